"""Resource estimates: the memory model against what PyTorch really saves and allocates."""

from __future__ import annotations

import contextlib

import pytest
import torch

from growgpt import estimate as est
from growgpt import hardware, plan_estimate
from growgpt.errors import UserError
from growgpt.model import GPT, GPTConfig, padded_vocab_size
from growgpt.train import optimizer_step
from growgpt.wiki.dumps import TEXT_PER_COMPRESSED, TOKENS_PER_COMPRESSED

# (n_layer, n_head, n_embd, block_size, vocab_size, batch_size, bias, dropout)
SHAPES = [
    (2, 2, 32, 64, 100, 4, True, 0.0),
    (3, 4, 64, 32, 65, 2, True, 0.1),
    (1, 1, 48, 16, 300, 3, False, 0.2),
    (2, 4, 128, 128, 1000, 8, True, 0.0),
]


@pytest.fixture(autouse=True)
def one_thread():
    """Memory does not depend on the thread count; time does, badly when other work shares the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(n_layer, n_head, n_embd, block_size, vocab_size, bias=True, dropout=0.0) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=block_size, vocab_size=padded_vocab_size(vocab_size), n_layer=n_layer,
                         n_head=n_head, n_embd=n_embd, dropout=dropout, bias=bias))


def _autocast(dtype: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()


def _measured_saved_bytes(model: GPT, batch_size: int, vocab_size: int, dtype: str) -> int:
    """Bytes of the distinct storages autograd saves for backward, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    T = model.config.block_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab_size, (batch_size, T), generator=gen)
    y = torch.randint(0, vocab_size, (batch_size, T), generator=gen)
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _autocast(dtype):
        model(x, y)
    return sum(saved.values())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_activation_model_matches_saved_tensors_on_cpu(shape, dtype):
    L, nh, C, T, V, B, bias, dropout = shape
    measured = _measured_saved_bytes(_model(L, nh, C, T, V, bias, dropout), B, V, dtype)
    predicted = est.saved_activation_bytes(L, nh, C, T, V, B, dtype=dtype, bias=bias, dropout=dropout,
                                           device="cpu")["total"]
    assert abs(predicted - measured) <= 0.15 * measured, (predicted, measured)


def test_saved_tensors_are_split_between_activations_and_logits():
    L, nh, C, T, V, B, bias, dropout = SHAPES[0]
    saved = est.saved_activation_bytes(L, nh, C, T, V, B, "float32", bias, dropout, device="cpu")
    vram = est.vram_bytes(L, nh, C, T, V, B, "float32", bias, dropout, device="cpu")
    logits = B * T * padded_vocab_size(V)
    assert vram["activations"] + 4 * logits == saved["total"]
    assert vram["logits"] == 12 * logits  # fp32: log-probs and two gradients; the logits are freed at once
    assert est.vram_bytes(L, nh, C, T, V, B, "bfloat16", bias, dropout, device="cuda")["logits"] == 12 * logits


def _profiled_peak_bytes(shape, dtype: str) -> int:
    """Peak bytes of the Trainer's step (optimizer_step: 2 micro-batches, clipping, AdamW) after a
    first step has created the optimizer state, from the profiler's memory timeline. Skips when this
    torch lacks the private API the timeline comes from."""
    from torch.profiler import ProfilerActivity, profile

    try:
        from torch.profiler._memory_profiler import Action
    except ImportError as e:
        pytest.skip(f"profiler memory timeline unavailable: {e}")
    L, nh, C, T, V, B, bias, dropout = shape
    model = _model(L, nh, C, T, V, bias, dropout)
    optimizer = model.configure_optimizer(0.1, 1e-3, (0.9, 0.95), "cpu")
    scaler = torch.amp.GradScaler("cpu", enabled=False)  # fp32 or bf16: no loss scaling
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (B, T), generator=gen)
    y = torch.randint(0, V, (B, T), generator=gen)

    def step() -> None:
        optimizer_step(model, optimizer, scaler, lambda _micro: (x, y), 2, autocast=_autocast(dtype), grad_clip=1.0)

    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        step()
    try:
        timeline = prof._memory_profile().timeline
    except AttributeError as e:  # a torch whose profiler has no memory timeline (a private API)
        pytest.skip(f"profiler memory timeline unavailable: {e}")
    current = peak = 0
    for _t, action, _key, size in timeline:
        if action in (Action.PREEXISTING, Action.CREATE):
            current += size
        elif action == Action.DESTROY:
            current -= size
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("shape", [
    (2, 2, 64, 64, 8000, 4, True, 0.0),  # logits dominate
    (3, 4, 128, 64, 128, 16, True, 0.0),  # activations dominate
    (2, 4, 64, 64, 100, 8, True, 0.1),  # dropout: CPU attention on the math path
    (2, 2, 256, 8, 2000, 1, True, 0.0),  # few tokens: the tied matrix's gradients at the end of backward
])
def test_total_matches_profiled_peak_on_cpu(shape):
    dtype = "float32"  # bf16 matmuls are too slow on most CPUs for a quick test
    measured = _profiled_peak_bytes(shape, dtype)
    L, nh, C, T, V, B, bias, dropout = shape
    predicted = est.vram_bytes(L, nh, C, T, V, B, dtype, bias, dropout, device="cpu")["total"]
    assert abs(predicted - measured) <= 0.10 * measured, (predicted, measured)


@pytest.mark.parametrize("bias", [True, False])
def test_parameter_and_optimizer_terms_are_exact(bias):
    L, nh, C, T, V = 2, 2, 32, 16, 100
    model = _model(L, nh, C, T, V, bias)
    n = sum(p.numel() for p in model.parameters())
    assert est.model_params(L, nh, C, T, V, bias) == n == model.num_params(non_embedding=False)
    assert est.model_params(L, nh, C, T, padded_vocab_size(V), bias) == n  # padding is idempotent
    optimizer = model.configure_optimizer(0.1, 1e-3, (0.9, 0.95), "cpu")
    _, loss = model(torch.zeros(1, T, dtype=torch.long), torch.zeros(1, T, dtype=torch.long))
    loss.backward()
    optimizer.step()
    moments = sum(t.nbytes for state in optimizer.state.values() for k, t in state.items() if k != "step")
    grads = sum(p.grad.nbytes for p in model.parameters())
    vram = est.vram_bytes(L, nh, C, T, V, 1, "float32", bias, device="cpu")
    assert vram["params"] == 4 * n and vram["grads"] == grads and vram["adamw"] == moments
    terms = ("params", "grads", "adamw", "autocast_weights", "activations", "logits", "workspace")
    assert vram["at_backward_start"] == sum(vram[k] for k in terms)
    assert vram["total"] == max(vram["at_backward_start"], vram["at_backward_end"], vram["at_optimizer_step"])
    assert vram["cuda_context"] == 0 and vram["workspace"] == 0
    cuda = est.vram_bytes(L, nh, C, T, V, 1, "bfloat16", bias, device="cuda")
    assert cuda["total_on_card"] == cuda["total"] + est.CUDA_CONTEXT_BYTES
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert cuda["autocast_weights"] == 2 * linear


def test_attention_is_linear_in_t_on_cuda_but_quadratic_on_cpu_with_dropout():
    def act(T, device, dropout):
        return est.vram_bytes(2, 4, 64, T, 128, 4, "bfloat16", dropout=dropout, device=device)["activations"]

    assert act(2048, "cuda", 0.1) / act(1024, "cuda", 0.1) == pytest.approx(2.0, rel=0.02)
    assert act(2048, "cpu", 0.0) / act(1024, "cpu", 0.0) == pytest.approx(2.0, rel=0.02)
    assert act(2048, "cpu", 0.1) / act(1024, "cpu", 0.1) > 3.0


MODEL = dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, dtype="bfloat16", device="cuda")


def test_fit_batch_fits_and_is_maximal():
    tokens = 12 * 40 * 1024
    for gib in (6, 8, 12, 16, 24, 40, 80):
        memory = gib * 2**30
        b, accum = est.fit_batch(memory, tokens, block_size=1024, **MODEL)
        assert est.vram_bytes(block_size=1024, batch_size=b, **MODEL)["total_on_card"] <= 0.9 * memory
        larger = [c for c in est.batch_candidates(480) if c > b]
        if larger:
            assert est.vram_bytes(block_size=1024, batch_size=larger[0], **MODEL)["total_on_card"] > 0.9 * memory
        assert abs(b * accum * 1024 - tokens) <= 0.10 * tokens


def test_fit_batch_is_monotonic_in_memory():
    sizes = [est.fit_batch(gib * 2**30, 480 * 1024, block_size=1024, **MODEL) for gib in range(8, 200, 4)]
    batches = [b for b, _ in sizes]
    accums = [a for _, a in sizes]
    assert batches == sorted(batches) and accums == sorted(accums, reverse=True)
    assert batches[0] < batches[-1]
    small = dict(n_layer=2, n_head=2, n_embd=64, vocab_size=100)
    assert est.fit_batch(2**40, 480 * 256, block_size=256, **small) == (480, 1)  # no accumulation needed


def test_fit_batch_prefers_exact_tokens_and_refuses_what_cannot_fit():
    b, accum = est.fit_batch(2**50, 40 * 256, block_size=256, n_layer=2, n_head=2, n_embd=64, vocab_size=100)
    assert (b, accum) == (40, 1)
    b, accum = est.fit_batch(12 * 2**30, 37 * 1024, block_size=1024, **MODEL)  # a prime: 1 or 37 exact
    assert b * accum == 37 or abs(b * accum - 37) <= 3.7
    with pytest.raises(UserError, match="does not fit"):
        est.fit_batch(2**30, 1024 * 8, block_size=1024, **MODEL)


def test_device_memory_knows_every_gpu_of_the_table():
    device_memory = hardware.device_memory
    for gpu in hardware.GPUS:
        assert device_memory(gpu.name) >= 10 * 2**30
        assert hardware.gpu_peak_flops(gpu.name, "bfloat16") > hardware.gpu_peak_flops(gpu.name, "float32") > 0
    assert device_memory("NVIDIA GeForce RTX 4070") == 12_282 * 2**20
    assert device_memory("4090") == device_memory("RTX 4090") > 23 * 2**30
    assert device_memory("NVIDIA A100-SXM4-80GB") == 80 * 2**30
    assert device_memory("NVIDIA A100-SXM4-40GB") == device_memory("A100") == 40 * 2**30
    assert device_memory("NVIDIA H100 80GB HBM3") == 81_559 * 2**20
    assert device_memory("H200") > 139 * 2**30
    assert device_memory("NVIDIA L4") < device_memory("NVIDIA L40S")
    with pytest.raises(UserError, match="unknown GPU"):
        device_memory("Voodoo 5")
    if torch.cuda.is_available():
        assert device_memory() == torch.cuda.get_device_properties(0).total_memory
    else:
        with pytest.raises(UserError, match="no CUDA"):
            device_memory()


def test_disk_and_checkpoint_estimates(tmp_path):
    disk = est.disk_bytes(10**9)
    assert disk["download"] == 10**9
    assert disk["extracted"] == pytest.approx(TEXT_PER_COMPRESSED * 10**9, abs=1)
    assert disk["tokens"] == pytest.approx(TOKENS_PER_COMPRESSED * 10**9, abs=1)
    assert disk["total"] == disk["download"] + disk["extracted"] + disk["tokens"]

    from growgpt import checkpoint as ckpt_io
    from growgpt.config import TrainConfig

    model = _model(2, 2, 64, 32, 500)
    optimizer = model.configure_optimizer(0.1, 1e-3, (0.9, 0.95), "cpu")
    _, loss = model(torch.zeros(1, 32, dtype=torch.long), torch.zeros(1, 32, dtype=torch.long))
    loss.backward()
    optimizer.step()
    n = sum(p.numel() for p in model.parameters())
    full = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": TrainConfig().to_dict(),
            "rng": ckpt_io.capture_rng_state(), "model_args": model.config.to_dict()}
    ckpt_io.atomic_save(full, tmp_path / "ckpt.pt")
    ckpt_io.atomic_save({**full, "optimizer": None, "rng": None}, tmp_path / "best.pt")
    ckpt_io.export_safetensors({**full, "tokenizer": {"name": "gpt2"}}, tmp_path / "model.safetensors")
    sizes = est.checkpoint_bytes(n)
    for name, key in (("ckpt.pt", "ckpt"), ("best.pt", "best")):
        actual = (tmp_path / name).stat().st_size
        assert actual <= sizes[key] <= actual + est.CHECKPOINT_OVERHEAD_BYTES, (name, actual, sizes[key])
    actual = (tmp_path / "model.safetensors").stat().st_size  # the tied lm_head is not stored twice
    assert actual <= sizes["safetensors"] <= actual + est.CHECKPOINT_OVERHEAD_BYTES
    assert sizes["total"] == sizes["ckpt"] + sizes["best"] + sizes["safetensors"] and sizes["peak"] > sizes["total"]
    assert est.checkpoint_bytes(n, with_optimizer=False)["ckpt"] == sizes["best"]


def test_host_ram_estimates():
    from growgpt.prepare import BUFFER_BYTES

    ram = est.ram_bytes_prepare()
    assert ram["buffer"] >= BUFFER_BYTES and ram["total"] == sum(v for k, v in ram.items() if k != "total")
    assert est.ram_bytes_prepare(chars_per_token=1.0)["token_lists"] > ram["token_lists"]
    assert est.ram_bytes_loader(12, 1024, "cpu") < est.ram_bytes_loader(12, 1024, "cuda") < 2**20


def test_format_bytes():
    assert est.format_bytes(0) == "0 B"
    assert est.format_bytes(1023) == "1023 B"
    assert est.format_bytes(1536) == "1.5 KiB"
    assert est.format_bytes(12 * 2**30) == "12.0 GiB"
    assert est.format_bytes(-2 * 2**20) == "-2.0 MiB"


def test_probe_returns_a_positive_time_and_keeps_the_rng():
    state = torch.get_rng_state()
    seconds = plan_estimate.probe_iter_seconds(2, 2, 32, 32, 100, 4, device="cpu", dtype="float32", steps=2)
    assert 0 < seconds < 5
    assert torch.equal(state, torch.get_rng_state())


# --- on a GPU -------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("shape", [
    (6, 6, 384, 256, 50257, 16, True, 0.0),  # GPT-2 vocabulary: the logits dominate
    (8, 8, 512, 512, 100, 32, True, 0.1),  # char-level: the activations dominate
])
def test_estimate_matches_cuda_peak_of_a_training_step(shape):
    """The Trainer's optimizer_step (bf16 autocast, 2 accumulated micro-batches, clipping, fused AdamW)
    for a few iterations: max_memory_allocated within 25 % of the estimate (context excluded)."""
    L, nh, C, T, V, B, bias, dropout = shape
    dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model = _model(L, nh, C, T, V, bias, dropout).cuda()
    optimizer = model.configure_optimizer(0.1, 1e-4, (0.9, 0.95), "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=(dtype == "float16"))
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (B, T), generator=gen).cuda()
    y = torch.randint(0, V, (B, T), generator=gen).cuda()
    for _it in range(3):
        loss = optimizer_step(model, optimizer, scaler, lambda _micro: (x, y), 2,
                              autocast=torch.autocast("cuda", dtype=getattr(torch, dtype)), grad_clip=1.0)
    torch.cuda.synchronize()
    measured = torch.cuda.max_memory_allocated() - base
    predicted = est.vram_bytes(L, nh, C, T, V, B, dtype, bias, dropout, device="cuda")["total"]
    del model, optimizer, loss
    x = y = None  # frees the batch (the lambda above holds the names, not the tensors)
    torch.cuda.empty_cache()
    assert abs(predicted - measured) <= 0.25 * measured, (predicted, measured)


def test_byte_token_shards_are_estimated_at_two_bytes_per_byte_of_text():
    """The bytes tokenizer stores each byte of text as a uint16: ~4x GPT-2's shards for the same dump."""
    from growgpt.estimate import disk_bytes
    from growgpt.wiki.dumps import TEXT_PER_COMPRESSED

    gpt2, byte_level = disk_bytes(10**9), disk_bytes(10**9, "bytes")
    assert gpt2["extracted"] == byte_level["extracted"] == int(10**9 * TEXT_PER_COMPRESSED)
    assert byte_level["tokens"] >= 4 * gpt2["tokens"]
    assert byte_level["tokens"] == pytest.approx(2 * 1.7e9, rel=0.05)  # 1.66-1.69 bytes of text per bz2 byte
