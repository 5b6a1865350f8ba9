"""`growgpt export`: a run as a Hugging Face folder that transformers loads with no growgpt code —
same logits, same greedy text, same token ids — and the refusals (char tokenizer, existing target)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="export tests load the folder with transformers (pip install transformers)")

import torch  # noqa: E402

from growgpt.config import load_config  # noqa: E402
from growgpt.errors import UserError  # noqa: E402
from growgpt.export import export  # noqa: E402
from growgpt.sample import load_model, sample  # noqa: E402
from growgpt.train import train  # noqa: E402

TEXTS = ["Hello world", "The history of", "  two  spaces\n\n\nand newlines \n", "it's they'll 12345 x=3.14;",
         "naïve café, 日本語 and 🤖", "trailing spaces   "]


def _train(data: Path, out: Path, **overrides) -> Path:
    from conftest import TINY

    settings = dict(TINY, dataset=str(data), out_dir=str(out), max_iters=4, eval_interval=2, eval_iters=1,
                    batch_size=4, gradient_accumulation_steps=1, warmup_iters=1, lr_decay_iters=4)
    train(load_config(base={**settings, **overrides}), verbose=False)
    return out


@pytest.fixture(scope="module")
def gpt2_run(gpt2_data, tmp_path_factory):
    return _train(gpt2_data, tmp_path_factory.mktemp("gpt2") / "run")


@pytest.fixture(scope="module")
def gpt2_export(gpt2_run, tmp_path_factory):
    lines: list[str] = []
    hf = export(gpt2_run, tmp_path_factory.mktemp("hf") / "model", log=lines.append)
    return hf, lines


def _hf_model(hf_dir):
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(str(hf_dir), output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    return model.eval()


def _max_logit_diff(hf_dir, checkpoint_path, vocab_size) -> float:
    ours, state = load_model(checkpoint_path)
    theirs = _hf_model(hf_dir)
    assert theirs.lm_head.weight.data_ptr() == theirs.transformer.wte.weight.data_ptr()  # tied
    block = state["model_args"]["block_size"]
    x = torch.randint(0, vocab_size, (3, block), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = theirs(x).logits
        b, _ = ours(x, x)  # with targets: logits at every position
    assert a.shape == (3, block, vocab_size)
    return (a - b[..., :vocab_size]).abs().max().item()


def test_folder_has_the_files_transformers_expects(gpt2_export, gpt2_run):
    hf, lines = gpt2_export
    names = {p.name for p in hf.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "vocab.json", "merges.txt",
            "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "README.md"} <= names
    assert not any(p.name.startswith(".") for p in hf.parent.iterdir())  # no temporary folder left
    config = json.loads((hf / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    assert (config["n_layer"], config["n_head"], config["n_embd"], config["n_positions"]) == (2, 2, 32, 32)
    assert config["vocab_size"] == 50257 and config["bos_token_id"] == config["eos_token_id"] == 50256
    assert config["activation_function"] == "gelu_new" and config["layer_norm_epsilon"] == 1e-5
    card = (hf / "README.md").read_text()
    assert "val loss" in card and "bits per byte" in card and "tokens trained" in card and "lm_eval" in card
    assert any("exported" in line for line in lines) and not any("zeros" in line for line in lines)


def test_logits_match_growgpt(gpt2_export, gpt2_run):
    hf, _ = gpt2_export
    assert _max_logit_diff(hf, gpt2_run / "best.pt", 50257) <= 1e-4


def test_tokenizer_round_trip_equals_tiktoken(gpt2_export):
    from transformers import AutoTokenizer

    from growgpt.tokenizer import GPT2Tokenizer  # byte-for-byte tiktoken's "gpt2", offline

    tok = AutoTokenizer.from_pretrained(str(gpt2_export[0]))
    ours = GPT2Tokenizer()
    assert tok.encode("Hello world") == ours.encode("Hello world") == [15496, 995]
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids == ours.encode(text), text
        assert tok.decode(ids) == text
    assert tok.eos_token_id == tok.bos_token_id == 50256 and tok.model_max_length == 32


def test_greedy_pipeline_text_equals_growgpt_greedy_sample(gpt2_export, gpt2_run):
    from transformers import pipeline

    prompt = "The history of"
    ours = sample(str(gpt2_run), start=prompt, num_samples=1, max_new_tokens=12, temperature=0, device="cpu",
                  checkpoint="best")[0]
    generate = pipeline("text-generation", model=str(gpt2_export[0]), device="cpu")
    theirs = generate(prompt, max_new_tokens=12, do_sample=False)[0]["generated_text"]
    assert theirs == ours


def test_bias_false_exports_zeros_and_matches(gpt2_data, tmp_path):
    from safetensors.torch import load_file

    run = _train(gpt2_data, tmp_path / "run", bias=False, max_iters=2, eval_interval=1)
    lines: list[str] = []
    hf = export(run, tmp_path / "hf", checkpoint="last", log=lines.append)
    assert any("no biases" in line and "zeros" in line for line in lines)
    assert "zeros" in (hf / "README.md").read_text()
    tensors = load_file(str(hf / "model.safetensors"))
    biases = [k for k in tensors if k.endswith(".bias")]
    assert "transformer.ln_f.bias" in biases and "transformer.h.1.attn.c_attn.bias" in biases
    assert all(not tensors[k].any() for k in biases)
    assert _max_logit_diff(hf, run / "ckpt.pt", 50257) <= 1e-4


def test_bytes_run_exports_with_a_byte_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from growgpt.prepare import prepare
    from growgpt.tokenizer import BytesTokenizer

    from python_reference import python_reference_documents

    data = tmp_path / "data"
    prepare([], str(data), tokenizer="bytes", documents=list(python_reference_documents())[:10], progress=False,
            val_fraction=0.2)
    run = _train(data, tmp_path / "run")
    hf = export(run, tmp_path / "hf", log=None)
    tok = AutoTokenizer.from_pretrained(str(hf))
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids == BytesTokenizer().encode(text)
        assert tok.decode(ids) == text
    assert tok.eos_token_id == 256
    assert _max_logit_diff(hf, run / "best.pt", 257) <= 1e-4


def test_char_tokenizer_is_refused_in_one_line(char_data, tmp_path):
    run = _train(char_data, tmp_path / "run", max_iters=1, eval_interval=1)
    with pytest.raises(UserError) as e:
        export(run, tmp_path / "hf", checkpoint="last", log=None)
    assert "'char'" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "hf").exists()


def test_existing_target_is_refused_unless_overwrite(gpt2_run, tmp_path):
    target = tmp_path / "hf"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match=r"exists and is not empty .*--overwrite") as e:
        export(gpt2_run, target, log=None)
    assert "\n" not in str(e.value) and (target / "keep.txt").read_text() == "mine"
    export(gpt2_run, target, overwrite=True, log=None)
    assert not (target / "keep.txt").exists() and (target / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]  # neither the temporary nor the old folder is left
    (tmp_path / "empty").mkdir()
    export(gpt2_run, tmp_path / "empty", log=None)  # an empty folder is fine
    # Never replaced, even with overwrite: the folder of the checkpoint exported, or any growgpt run.
    with pytest.raises(UserError, match=r"holds the checkpoint being exported"):
        export(gpt2_run, gpt2_run, overwrite=True, log=None)
    other_run = tmp_path / "other-run"
    other_run.mkdir()
    (other_run / "metrics.jsonl").write_text("")
    with pytest.raises(UserError, match=r"holds a growgpt run \(metrics.jsonl\)"):
        export(gpt2_run, other_run, overwrite=True, log=None)
    assert (gpt2_run / "best.pt").is_file() and (other_run / "metrics.jsonl").is_file()
    with pytest.raises(UserError, match=r"no best checkpoint|checkpoint not found"):
        export(tmp_path / "empty", tmp_path / "x", log=None)
