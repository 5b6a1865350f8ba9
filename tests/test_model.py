"""The GPT model: shapes, parameter count, GPT-2 weights from local files, generation."""

from __future__ import annotations

import json

import pytest
import torch

from growgpt.errors import UserError
from growgpt.model import GPT, GPTConfig, load_gpt2_weights, padded_vocab_size


def tiny_config(**kw) -> GPTConfig:
    return GPTConfig(**{**dict(block_size=16, vocab_size=padded_vocab_size(100), n_layer=2, n_head=2, n_embd=16), **kw})


def test_vocab_padding_and_parameter_count():
    assert padded_vocab_size(50257) == 50304 and padded_vocab_size(64) == 64 and padded_vocab_size(65) == 128
    model = GPT(GPTConfig())  # GPT-2 small
    # The famous 124M counts the position embeddings; the non-embedding count excludes them.
    assert model.num_params(non_embedding=False) == 124_475_904  # 124,439,808 + 36,096 padded vocab rows
    assert model.lm_head.weight is model.transformer.wte.weight


def test_forward_shapes_and_causality():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    x = torch.randint(0, 100, (3, 10))
    logits, loss = model(x, x)
    assert logits.shape == (3, 10, 128) and loss.shape == ()
    # Changing a later token must not change earlier positions' logits.
    x2 = x.clone()
    x2[:, 7] = (x2[:, 7] + 1) % 100
    logits2, _ = model(x2, x2)
    assert torch.allclose(logits[:, :7], logits2[:, :7], atol=1e-6)
    assert not torch.allclose(logits[:, 7:], logits2[:, 7:])
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


def _write_hf_folder(model: GPT, folder, with_config=True):
    """Our weights in Hugging Face GPT-2 naming and layout (Conv1D (in, out) matrices)."""
    from safetensors.torch import save_file

    folder.mkdir()
    transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("lm_head"):
            continue
        name = key.removeprefix("transformer.")
        value = value.t().contiguous() if name.endswith(transposed) else value.clone()
        if name == "wte.weight":
            value = value[:100].contiguous()  # HF stores the unpadded vocabulary
        state[name] = value
    save_file(state, str(folder / "model.safetensors"))
    if with_config:
        c = model.config
        (folder / "config.json").write_text(json.dumps({"n_layer": c.n_layer, "n_head": c.n_head, "n_embd": c.n_embd,
                                                        "n_positions": c.block_size, "vocab_size": 100}))


def test_gpt2_weights_load_from_local_folder_and_file(tmp_path):
    torch.manual_seed(1)
    source = GPT(tiny_config()).eval()
    _write_hf_folder(source, tmp_path / "hf")
    x = torch.randint(0, 100, (2, 12))
    for path in (tmp_path / "hf", tmp_path / "hf" / "model.safetensors"):
        loaded = load_gpt2_weights(path).eval()
        assert loaded.config.n_layer == 2 and loaded.config.n_head == 2 and loaded.config.block_size == 16
        torch.testing.assert_close(loaded(x, x)[0][..., :100], source(x, x)[0][..., :100])


def test_gpt2_weights_errors(tmp_path):
    with pytest.raises(UserError, match=r"GPT-2 weights not found: .*nowhere"):
        load_gpt2_weights(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"neither model.safetensors nor pytorch_model.bin"):
        load_gpt2_weights(tmp_path / "empty")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors at all")
    with pytest.raises(UserError, match=r"cannot read GPT-2 weights .*bad.safetensors"):
        load_gpt2_weights(bad)


def test_generate_never_samples_padding_ids():
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    with torch.no_grad():
        model.lm_head.weight[100:] += 50.0  # make the padding rows overwhelmingly likely
    out = model.generate(torch.zeros(1, 1, dtype=torch.long), 40, temperature=1.0, vocab_size=100)
    assert out.shape == (1, 41) and int(out.max()) < 100


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_autocast_matches_fp32_on_gpu():
    torch.manual_seed(0)
    model = GPT(tiny_config()).cuda().eval()
    x = torch.randint(0, 100, (2, 16), device="cuda")
    _, loss32 = model(x, x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, loss16 = model(x, x)
    assert abs(loss32.item() - loss16.item()) < 0.05
