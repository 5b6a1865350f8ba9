"""Hugging Face GPT-2 weights in every layout transformers writes (single or sharded, safetensors or
PyTorch .bin) load into growgpt's GPT with transformers' logits, and sample with no training run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from growgpt.errors import UserError
from growgpt.model import GPT, GPTConfig, load_gpt2_weights
from growgpt.sample import sample

transformers = pytest.importorskip("transformers")

VOCAB = 50257


def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def _save_bin_shards(state: dict, folder: Path, n: int) -> None:
    """The layout transformers 4 wrote with safe_serialization=False: pytorch_model-0000k-of-0000n.bin
    shards and pytorch_model.bin.index.json (transformers 5 writes safetensors only)."""
    keys = list(state)
    weight_map = {}
    for k in range(n):
        name = f"pytorch_model-{k + 1:05d}-of-{n:05d}.bin"
        part = {key: state[key] for key in keys[k::n]}
        torch.save(part, folder / name)
        weight_map.update({key: name for key in part})
    (folder / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}), encoding="utf-8")


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """A tiny random GPT-2 (transformers) and one folder per layout."""
    torch.manual_seed(0)
    # A wider init than GPT-2's 0.02 spreads the logits, so greedy choices are not near-ties.
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, initializer_range=0.2)
    model = transformers.GPT2LMHeadModel(config).eval()
    root = tmp_path_factory.mktemp("hf")
    folders = {}
    folders["safetensors"] = root / "single"
    model.save_pretrained(folders["safetensors"])
    folders["safetensors-sharded"] = root / "sharded"
    model.save_pretrained(folders["safetensors-sharded"], max_shard_size="50KB")
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]  # tied, as transformers 4 saved it
    for name in ("bin", "bin-sharded"):
        folder = folders[name] = root / name
        folder.mkdir()
        shutil.copy(folders["safetensors"] / "config.json", folder / "config.json")
        if name == "bin":
            torch.save(state, folder / "pytorch_model.bin")
        else:
            _save_bin_shards(state, folder, 3)
    return model, folders


def test_layouts_are_what_they_claim(hf):
    _, folders = hf
    assert sorted(p.name for p in folders["safetensors-sharded"].glob("model-*-of-*.safetensors"))[1:]
    assert (folders["safetensors-sharded"] / "model.safetensors.index.json").is_file()
    assert not (folders["safetensors-sharded"] / "model.safetensors").exists()
    assert len(list(folders["bin-sharded"].glob("pytorch_model-*-of-00003.bin"))) == 3


@pytest.mark.parametrize("layout, target", [
    ("safetensors", ""), ("safetensors", "model.safetensors"),
    ("safetensors-sharded", ""), ("safetensors-sharded", "model.safetensors.index.json"),
    ("bin", ""), ("bin", "pytorch_model.bin"),
    ("bin-sharded", ""), ("bin-sharded", "pytorch_model.bin.index.json"),
])
def test_logits_equal_transformers(hf, layout, target):
    model, folders = hf
    path = folders[layout] / target if target else folders[layout]
    ours = load_gpt2_weights(path).eval()
    assert (ours.config.n_layer, ours.config.n_head, ours.config.n_embd, ours.config.block_size) == (2, 2, 32, 64)
    assert ours.config.bias
    x = torch.randint(0, VOCAB, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).logits
        got = ours(x, x)[0][..., :VOCAB]
    assert (got - expected).abs().max().item() <= 1e-4


def test_greedy_sample_equals_transformers_generate(hf):
    from growgpt.tokenizer import GPT2Tokenizer

    model, folders = hf
    tok = GPT2Tokenizer()
    prompt = "The history of"
    ids = torch.tensor([tok.encode(prompt)])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False,
                             pad_token_id=VOCAB - 1, eos_token_id=None)
        first = int(model(ids).logits[0, -1].argmax())
    assert out.shape[1] == ids.shape[1] + 16 and int(out[0, ids.shape[1]]) == first
    expected = tok.decode(out[0].tolist())
    for layout in ("safetensors", "safetensors-sharded", "bin-sharded"):
        texts = sample(None, start=prompt, num_samples=2, max_new_tokens=16, temperature=0, device="cpu",
                       checkpoint=str(folders[layout]))
        assert texts == [expected, expected], layout
    # --run HF_DIR (checkpoint auto) is the same folder.
    assert sample(str(folders["safetensors-sharded"]), start=prompt, num_samples=1, max_new_tokens=16,
                  temperature=0, device="cpu") == [expected]
    # Sampling with a temperature is reproducible with a seed.
    a = sample(None, start=prompt, max_new_tokens=8, seed=3, device="cpu", checkpoint=str(folders["bin"]))
    b = sample(None, start=prompt, max_new_tokens=8, seed=3, device="cpu", checkpoint=str(folders["bin"]))
    assert a == b and a[0].startswith(prompt) and len(a[0]) > len(prompt)


def _copy(folders, layout, tmp_path) -> Path:
    dest = tmp_path / layout
    shutil.copytree(folders[layout], dest)
    return dest


@pytest.mark.parametrize("layout, index_name", [("safetensors-sharded", "model.safetensors.index.json"),
                                                ("bin-sharded", "pytorch_model.bin.index.json")])
def test_missing_shard_names_it(hf, tmp_path, layout, index_name):
    folder = _copy(hf[1], layout, tmp_path)
    shard = sorted(folder.glob("*-00002-of-*"))[0]
    shard.unlink()
    with pytest.raises(UserError) as e:
        load_gpt2_weights(folder)
    assert f"shard {shard} listed in {folder / index_name} is missing" in _one_line(e)
    with pytest.raises(UserError, match=rf"--checkpoint: shard .*{shard.name} listed in .* is missing"):
        sample(None, device="cpu", checkpoint=str(folder))


def test_corrupt_index_names_it(hf, tmp_path):
    folder = _copy(hf[1], "safetensors-sharded", tmp_path)
    index = folder / "model.safetensors.index.json"
    good = json.loads(index.read_text(encoding="utf-8"))
    index.write_text('{"weight_map": {"transformer.wte.weight": "model-000', encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_gpt2_weights(folder)
    assert f"{index} is not a readable JSON file" in _one_line(e)
    index.write_text(json.dumps({"metadata": {}}), encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_gpt2_weights(folder)
    assert f"{index} is not a shard index" in _one_line(e)
    index.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(UserError, match="is not a shard index"):
        load_gpt2_weights(folder)
    # A tensor the index puts in a shard that does not hold it.
    wrong = dict(good, weight_map=dict(good["weight_map"]))
    key, shard = next(iter(wrong["weight_map"].items()))
    other = next(s for s in sorted(set(wrong["weight_map"].values())) if s != shard)
    wrong["weight_map"][key] = other
    index.write_text(json.dumps(wrong), encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_gpt2_weights(folder)
    assert f"puts tensor {key} in {folder / other}, which does not hold it" in _one_line(e)
    # A shard name that leaves the folder.
    escape = dict(good, weight_map={k: "../" + v for k, v in good["weight_map"].items()})
    index.write_text(json.dumps(escape), encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_gpt2_weights(folder)
    assert "which is not a file name in its folder" in _one_line(e)


class _Payload:
    """Pickles as a call of os.getcwd: code that weights_only loading must refuse to run."""

    def __reduce__(self):
        return (os.getcwd, ())


_REFUSED = "growgpt never loads"  # torchload.load_error_reason: code, or objects other than tensors


def test_bin_with_python_objects_is_refused(hf, tmp_path):
    folder = _copy(hf[1], "bin", tmp_path)
    weights = folder / "pytorch_model.bin"
    torch.save({"transformer.wte.weight": _Payload()}, weights)
    with pytest.raises(UserError) as e:
        load_gpt2_weights(folder)
    text = _one_line(e)
    assert f"cannot read GPT-2 weights {weights}: " in text
    assert _REFUSED in text and "weights_only=False" not in text
    torch.save({"transformer.wte.weight": [1, 2, 3]}, weights)  # plain data, but no tensors
    with pytest.raises(UserError, match=r"pytorch_model.bin does not hold named tensors"):
        load_gpt2_weights(folder)
    # The same inside a shard of a sharded .bin checkpoint.
    sharded = _copy(hf[1], "bin-sharded", tmp_path)
    shard = sharded / "pytorch_model-00002-of-00003.bin"
    torch.save({"x": _Payload()}, shard)
    with pytest.raises(UserError) as e:
        load_gpt2_weights(sharded)
    text = _one_line(e)
    assert f"cannot read GPT-2 weights {shard}: " in text and _REFUSED in text


def test_config_json_must_agree_with_the_weights(hf, tmp_path):
    folder = _copy(hf[1], "safetensors", tmp_path)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    for change, message in (({"n_layer": 3}, "says n_layer = 3, its weights hold 2"),
                            ({"n_positions": 1024}, "says n_positions = 1024, its weights hold 64"),
                            ({"activation_function": "relu"}, "sets activation_function = 'relu'"),
                            ({"model_type": "gpt_neo"}, "describes a 'gpt_neo' model"),
                            ({"n_head": 5}, "n_head = 5")):
        config_file.write_text(json.dumps({**config, **change}), encoding="utf-8")
        with pytest.raises(UserError) as e:
            load_gpt2_weights(folder)
        assert message in _one_line(e), change


def test_untied_output_layer_is_refused(hf, tmp_path):
    folder = _copy(hf[1], "bin", tmp_path)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["lm_head.weight"] = state["lm_head.weight"].clone() + 1
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(UserError, match="growgpt's GPT-2 ties the two"):
        load_gpt2_weights(folder)


def test_sampling_needs_a_known_vocabulary(tmp_path):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=32,
                                                                 vocab_size=1000))
    model.save_pretrained(tmp_path / "small")
    with pytest.raises(UserError, match=r"vocabulary of 1000 tokens"):
        sample(None, device="cpu", checkpoint=str(tmp_path / "small"))
    with pytest.raises(UserError, match=r"nothing to sample"):
        sample(None, device="cpu")


def test_growgpt_runs_still_resolve_as_before(tmp_path):
    """A growgpt model.safetensors is not mistaken for Hugging Face weights, in sample or init_from."""
    from growgpt import checkpoint as ckpt_io
    from growgpt.tokenizer import BytesTokenizer

    torch.manual_seed(0)
    config = GPTConfig(block_size=16, vocab_size=320, n_layer=1, n_head=2, n_embd=16)
    state = {"model": GPT(config).state_dict(), "model_args": config.to_dict(), "tokenizer": BytesTokenizer().spec()}
    run = tmp_path / "run"
    run.mkdir()
    ckpt_io.export_safetensors(state, run / ckpt_io.SAFETENSORS)
    assert not ckpt_io.is_hf_path(run) and not ckpt_io.is_hf_path(run / ckpt_io.SAFETENSORS)
    a = sample(None, start="ab", max_new_tokens=5, temperature=0, device="cpu",
               checkpoint=str(run / ckpt_io.SAFETENSORS))
    assert a[0].startswith("ab")
    with pytest.raises(UserError, match=r"is a growgpt weights file .*not Hugging Face GPT-2 weights"):
        load_gpt2_weights(run / ckpt_io.SAFETENSORS)
