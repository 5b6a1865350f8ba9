"""Resource estimates for `growgpt estimate`: GPU memory, batch size, disk, host RAM, iteration time.

Everything here takes plain numbers (model shape, batch, dtype) and returns bytes or seconds, so
the plan parser and the CLI can ask "does this fit on a 4070?" without building a model; only
`probe_iter_seconds` runs one.

GPU memory of a training step (`vram_bytes`)
--------------------------------------------
The estimate follows what `Trainer.train_step` keeps alive. Its peak is usually the start of the
backward pass of a micro-batch, before any saved tensor is freed, where these terms are alive:

* params: fp32 master weights, 4 bytes per parameter (the tied wte/lm_head matrix counted once).
* grads: fp32, 4 bytes per parameter. With set_to_none they are absent during the first micro-batch
  of an iteration, but they exist during every later one (gradient accumulation), so they count.
* adamw: exp_avg and exp_avg_sq, fp32, 8 bytes per parameter.
* autocast_weights: under bf16/fp16 autocast every Linear weight is cast to 2 bytes once per forward
  and the copy is saved for backward (lm_head's V x C included; the embedding reads the fp32 matrix).
* activations: the tensors autograd saves for backward, modelled tensor by tensor on this GPT's
  forward (`saved_activation_bytes` lists them). Per layer and token, with s = 2 (autocast) or 4
  (fp32) bytes: LayerNorm inputs are the fp32 residual stream (2 x 4C) plus mean/rstd; their outputs
  as fed to the Linear (2 x sC); q, k, v (3sC, views of c_attn's output); the attention output (sC,
  which is also c_proj's input); c_fc's output and GELU's output (2 x 4sC); dropout masks (bool on
  CUDA, a float noise tensor on CPU). Attention is O(T) per head on CUDA (flash / memory-efficient
  kernels keep q, k, v, the output and a logsumexp; their dropout draws from a seed, no mask). On CPU
  the fused kernel is used without dropout (O(T) too), but with dropout SDPA falls back to the math
  path, which runs in fp32 (also under autocast) and stores the T x T attention probabilities, the
  dropout noise and the dropped probabilities per head: 3 T^2 fp32 values per head and sequence.
* logits: 12 bytes per logit, B x T x V with V padded: the fp32 log-probs saved for the loss
  (4), and at the start of backward the loss gradient and the logits gradient (4 + 4); the logits
  themselves are freed at once (`train_step` never binds them to a name). This is
  usually the largest term (GPT-2 vocab, B=12, T=1024: 8.7 GB). For very few tokens per micro-batch
  (B x T < n_embd / 2) lm_head's weight gradient (V x C: bf16 and its fp32 cast under autocast,
  6 bytes; 4 in fp32) while the logits' gradient is still alive is the larger, and is used.
* workspace: cuBLAS / cuBLASLt workspaces, allocated through PyTorch's caching allocator on CUDA
  (so `torch.cuda.max_memory_allocated` sees them): WORKSPACE_BYTES.

Their sum is `at_backward_start`. Two other moments can be higher when the tokens per micro-batch
are few: `at_backward_end`, where the tied matrix's two gradients (lm_head's, held by autograd since
the start of backward, and the embedding's) and their sum are alive (12 bytes per V x C), and
`at_optimizer_step` (16 bytes per parameter; the fused CUDA AdamW works in place, the CPU one makes
two temporaries the size of the largest parameter). `total` is the largest of the three: the
estimate of `torch.cuda.max_memory_allocated()`. `cuda_context` (CUDA_CONTEXT_BYTES, ~500 MB: the
CUDA context, kernel images and the allocator's slack) is what the card holds beyond that;
`total_on_card` adds it. Both context and workspace are 0 on CPU.

Measured on CPU (tests/test_estimate.py): the saved-activation model matches the bytes that
`torch.autograd.graph.saved_tensors_hooks` sees exactly (fp32 and bf16 autocast, with and without
dropout), and `total` matches the peak of the profiler's memory timeline over a Trainer-like step to
within 1 %. On CUDA, tests/test_estimate.py compares `total` with max_memory_allocated (25 %).

`compile=True` uses the same figure: an upper bound, since Inductor recomputes pointwise ops (GELU,
dropout masks, LayerNorm outputs) rather than saving them, which typically lowers activations.

Other resources
---------------
* `fit_batch`: the largest micro-batch that fits a card's memory with a 10 % margin, and the
  accumulation steps that keep the tokens per optimizer step. `device_memory` knows the cards of
  `hardware.GPU_PEAK_FLOPS` and reads the live one.
* `disk_bytes` (a Wikipedia dump through extract and prepare), `checkpoint_bytes`,
  `ram_bytes_prepare`, `ram_bytes_loader`.
* `probe_iter_seconds`: a few measured forward/backward/AdamW steps on random tokens.

Time (`iteration_timing`)
-------------------------
An estimate answers in seconds, so the time of a micro-batch comes one of two ways, and the output
says which. When the target device is not this machine (a `--gpu` card, or device cuda without CUDA
here), it is derived: training FLOPs per micro-batch (`train_flops_per_token`: 6 per parameter plus
attention, per token) / (the card's dense peak from hardware.GPU_PEAK_FLOPS x ASSUMED_MFU, 40 %).
On this machine a probe measures it, unless one step would exceed PROBE_BUDGET_S: the step's FLOPs
over this device's peak (the cached CPU measurement, or the card's datasheet figure) at a pessimistic
PROBE_PLAN_MFU gives its expected time, and a model too large for the budget (GPT-2 124M on a CPU:
minutes per step) is derived like a remote card, from the measured CPU peak x ASSUMED_MFU.
"""

from __future__ import annotations

import contextlib
import math
import re
import time

from growgpt.errors import UserError
from growgpt.model import padded_vocab_size
from growgpt.tokenizer import FIXED_VOCAB_SIZES

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
CUDA_CONTEXT_BYTES = 500 * 2**20  # CUDA context + kernel images + allocator slack, outside max_memory_allocated
WORKSPACE_BYTES = 64 * 2**20  # cuBLAS + cuBLASLt workspaces (counted by max_memory_allocated)
FIT_MARGIN = 0.10
ASSUMED_MFU = 0.40  # derived times: this share of the device's dense peak (nanoGPT reaches ~40 % on A100s)
PROBE_BUDGET_S = 5.0  # the timing probe runs only when its steps should fit in this many seconds
PROBE_PLAN_MFU = 0.15  # the pessimistic MFU used to predict a probe's duration before running it

# Total memory of the cards in hardware.GPU_PEAK_FLOPS, MiB as nvidia-smi reports it; most specific
# names first. A size in the device name ("A100-SXM4-80GB", "V100-SXM2-32GB") overrides the default.
GPU_MEMORY_MIB: list[tuple[str, int]] = [
    ("H200", 143_771),
    ("H100 NVL", 95_830),
    ("H100 PCIe", 81_559),
    ("H100", 81_559),
    ("A100", 40_960),  # the 80 GB model names its size: "A100-SXM4-80GB", "A100 80GB PCIe"
    ("L40S", 46_068),
    ("L4", 23_034),
    ("A10G", 23_028),
    ("RTX 4090", 24_564),
    ("RTX 4080", 16_376),
    ("RTX 4070 Ti", 12_282),
    ("RTX 4070", 12_282),
    ("RTX 3090", 24_576),
    ("RTX 3080", 10_240),
    ("V100", 16_384),
    ("T4", 15_360),
]


# --- model shape ---------------------------------------------------------------------------------

def model_params(n_layer: int, n_head: int, n_embd: int, block_size: int, vocab_size: int,
                 bias: bool = True) -> int:
    """All parameters of `GPT` (wte/lm_head tied, counted once; wpe included). vocab_size is padded
    to a multiple of 64 here, as the model does (an already padded size stays as it is)."""
    V, C = padded_vocab_size(vocab_size), n_embd
    per_layer = 12 * C * C + 2 * C + (11 * C if bias else 0)  # 4 Linear weights, 2 LN gains, biases
    return V * C + block_size * C + n_layer * per_layer + C + (C if bias else 0)


def train_flops_per_token(n_layer: int, n_head: int, n_embd: int, block_size: int, vocab_size: int,
                          bias: bool = True) -> float:
    """Training FLOPs per token (forward + backward) as GPT.flops_per_token counts them: 6 per
    parameter (position embeddings excluded) plus the attention score and value matmuls."""
    n = model_params(n_layer, n_head, n_embd, block_size, vocab_size, bias) - block_size * n_embd
    return 6 * n + 12 * n_layer * n_embd * block_size


def _linear_weight_params(n_layer: int, n_embd: int, vocab_size: int) -> int:
    """Elements of every nn.Linear weight (what autocast casts): 12 C^2 per layer plus lm_head."""
    return n_layer * 12 * n_embd * n_embd + padded_vocab_size(vocab_size) * n_embd


def _device_type(device: str) -> str:
    kind = device.split(":")[0]
    if kind == "auto":
        return "cuda"
    if kind not in ("cuda", "cpu", "mps"):
        raise UserError(f"device must be cuda, cpu or mps, got {device!r}")
    return kind


def _dtype_bytes(dtype: str, device_type: str) -> int:
    if dtype == "auto":
        dtype = "bfloat16" if device_type == "cuda" else "float32"
    if dtype not in DTYPE_BYTES:
        raise UserError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
    return DTYPE_BYTES[dtype]


def saved_activation_bytes(n_layer: int, n_head: int, n_embd: int, block_size: int, vocab_size: int,
                           batch_size: int, dtype: str = "bfloat16", bias: bool = True, dropout: float = 0.0,
                           device: str = "cuda") -> dict[str, int]:
    """Bytes of the tensors the forward saves for backward (parameters excluded), per kind.
    device: "cuda" or "cpu" ("mps" is treated as "cpu": math attention with dropout, float masks).

    Keys: layers (all blocks), embedding (ids, positions, embedding dropout mask), final (ln_f and
    lm_head input), loss (fp32 log-probs, targets), autocast_weights (the 2-byte weight copies under
    autocast), total (their sum, what saved_tensors_hooks would see)."""
    dev = _device_type(device)
    s = _dtype_bytes(dtype, dev)
    r = 4  # the residual stream is fp32 also under autocast (fp32 embeddings + low-precision branch)
    B, T, C, nh = batch_size, block_size, n_embd, n_head
    V = padded_vocab_size(vocab_size)
    BT = B * T
    drop = dropout > 0

    def mask(input_bytes: int) -> int:
        """Bytes per element of a dropout mask: bool from CUDA's fused kernel; on CPU a float noise
        tensor in the dtype of the dropout's input."""
        return 1 if dev == "cuda" else input_bytes

    ln_stats = 2 * 4  # mean and rstd, fp32, per token
    per_token = 2 * (r * C + ln_stats)  # ln_1, ln_2 inputs
    per_token += 2 * s * C  # LN outputs as the Linear sees them (fp32 output, or its autocast copy)
    if dev == "cuda":
        # flash (half) or memory-efficient (fp32, logsumexp padded to 32 positions) attention
        t_lse = T if s == 2 else 32 * math.ceil(T / 32)
        attention = BT * (3 * s * C + s * C) + B * nh * t_lse * 4
    elif not drop:  # CPU fused (flash) kernel: q, k, v views, output, logsumexp
        attention = BT * (3 * s * C + s * C) + B * nh * T * 4
    else:  # CPU math path, in fp32 also under autocast: scaled q, k and v copies, the T x T
        # probabilities, dropout noise and dropped probabilities; the output copy in the compute dtype
        # (with one fp32 head, v is a view of c_attn's output, which is then saved whole)
        v = 3 * s * C if (nh == 1 and s == 4) else 4 * C
        attention = BT * (2 * 4 * C + v + s * C) + 3 * B * nh * T * T * 4
    per_token += 4 * s * C + 4 * s * C  # c_fc output (GELU input), GELU output (c_proj input)
    if drop:
        per_token += 2 * C * mask(s)  # attention residual dropout, MLP dropout
    layers = n_layer * (BT * per_token + attention)

    embedding = BT * 8 + T * 8 + (BT * C * mask(4) if drop else 0)  # idx, positions, dropout mask
    final = BT * (r * C + ln_stats + s * C)  # ln_f input and stats, lm_head input
    loss = BT * V * 4 + BT * 8 + 4  # fp32 log-probs, targets, the loss
    autocast_weights = 2 * _linear_weight_params(n_layer, C, V) if s == 2 else 0
    parts = dict(layers=layers, embedding=embedding, final=final, loss=loss, autocast_weights=autocast_weights)
    parts["total"] = sum(parts.values())
    return parts


def vram_bytes(n_layer: int, n_head: int, n_embd: int, block_size: int, vocab_size: int, batch_size: int,
               dtype: str = "bfloat16", bias: bool = True, dropout: float = 0.0, compile: bool = False,
               device: str = "cuda") -> dict[str, int]:
    """Peak memory of a training step of micro-batches of batch_size x block_size (see the module
    docstring), in bytes.

    Keys: params, grads, adamw, autocast_weights, activations, logits, workspace (the terms alive at
    the start of backward, whose sum is at_backward_start); at_backward_end and at_optimizer_step
    (the other two candidate peaks); total, the largest of the three (what
    torch.cuda.max_memory_allocated should report); cuda_context; total_on_card."""
    del compile  # the eager figure is an upper bound for torch.compile (see the module docstring)
    dev = _device_type(device)
    s = _dtype_bytes(dtype, dev)
    n = model_params(n_layer, n_head, n_embd, block_size, vocab_size, bias)
    saved = saved_activation_bytes(n_layer, n_head, n_embd, block_size, vocab_size, batch_size, dtype, bias,
                                   dropout, dev)
    V = padded_vocab_size(vocab_size)
    logits = batch_size * block_size * V
    weight = V * n_embd  # the tied wte / lm_head matrix
    if s == 2:  # the loss head's peak, or just after it lm_head's weight gradient (bf16, then fp32)
        head = max(12 * logits, 4 * logits + 2 * weight, 2 * logits + 6 * weight)
    else:
        head = max(12 * logits, 8 * logits + 4 * weight)
    out = {
        "params": 4 * n,
        "grads": 4 * n,
        "adamw": 8 * n,
        "autocast_weights": saved["autocast_weights"],
        # saved tensors except the log-probs, which the logits term holds
        "activations": saved["layers"] + saved["embedding"] + saved["final"] + saved["loss"] - 4 * logits,
        "logits": head,
        "workspace": WORKSPACE_BYTES if dev == "cuda" else 0,
    }
    out["at_backward_start"] = sum(out.values())
    static = out["params"] + out["grads"] + out["adamw"] + out["workspace"]
    # The tied matrix gets two gradients in one backward: lm_head's waits in autograd's input buffer
    # until the embedding's arrives at the very end, then both and their sum are alive (3 x 4 V C),
    out["at_backward_end"] = static + 12 * weight
    # Fused AdamW on CUDA works in place; the CPU's single-tensor AdamW makes two temporaries the
    # size of the parameter it updates, the largest being the tied matrix (or c_fc's 4 C^2).
    largest = max(weight, 4 * n_embd * n_embd)
    out["at_optimizer_step"] = static + (0 if dev == "cuda" else 2 * 4 * largest)
    out["total"] = max(out["at_backward_start"], out["at_backward_end"], out["at_optimizer_step"])
    out["cuda_context"] = CUDA_CONTEXT_BYTES if dev == "cuda" else 0
    out["total_on_card"] = out["total"] + out["cuda_context"]
    return out


# --- batch size for a card ------------------------------------------------------------------------

def _norm_name(name: str) -> str:
    text = re.sub(r"nvidia|geforce|tesla", "", name.lower())
    return re.sub(r"[^a-z0-9]", "", text)


def device_memory(name: str | None = None) -> int:
    """Total memory in bytes of a GPU named like hardware.GPU_PEAK_FLOPS ("RTX 4070", "A100 80GB",
    "H100"), or of the live CUDA device when name is None, "cuda" or "auto"."""
    if name is None or name.lower() in ("cuda", "auto") or name.lower().startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            raise UserError("no CUDA device here: name the GPU to estimate for (e.g. 'RTX 4090')")
        index = int(name.split(":")[1]) if name and ":" in name else 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    size = re.search(r"(\d+)\s*G[Bi]?B?\b", name, re.IGNORECASE)
    wanted = _norm_name(name)
    for key, mib in GPU_MEMORY_MIB:
        k = _norm_name(key)
        if k in wanted or (wanted and wanted == k.removeprefix("rtx")):
            named = int(size.group(1)) * 1024 if size else 0  # "A100 80GB", "V100-SXM2-32GB" (MiB)
            if named >= 8 * 1024 and abs(named - mib) > 0.1 * named:
                return named * 2**20
            return mib * 2**20
    known = ", ".join(key for key, _ in GPU_MEMORY_MIB)
    raise UserError(f"unknown GPU {name!r}: give its memory in bytes instead, or one of {known}")


def _candidates(sequences: int) -> list[int]:
    """Divisors of the sequences per step (tokens exact), and powers of two whose rounded
    accumulation keeps the tokens per step within 10 %."""
    out = {d for d in range(1, sequences + 1) if sequences % d == 0}
    p = 1
    while p <= sequences:
        if abs(max(1, round(sequences / p)) * p - sequences) <= 0.10 * sequences:
            out.add(p)
        p *= 2
    return sorted(out)


def fit_batch(memory_bytes: int, tokens_per_step: int, *, block_size: int, margin: float = FIT_MARGIN,
              **model) -> tuple[int, int]:
    """(batch_size, gradient_accumulation_steps) for a card with memory_bytes.

    batch_size is the largest micro-batch whose `vram_bytes(...)["total_on_card"]` stays within
    (1 - margin) of memory_bytes, among the divisors of the sequences per step (tokens_per_step /
    block_size, so the tokens per step stay exact) and powers of two (the accumulation rounded, the
    tokens per step within 10 %). model: n_layer, n_head, n_embd, vocab_size and optionally dtype,
    bias, dropout, compile, device, as for `vram_bytes`. Raises UserError when batch_size 1 does
    not fit."""
    budget = (1.0 - margin) * memory_bytes
    sequences = max(1, round(tokens_per_step / block_size))

    def need(b: int) -> int:
        return vram_bytes(block_size=block_size, batch_size=b, **model)["total_on_card"]

    best = None
    for b in _candidates(sequences):  # ascending; the estimate grows with b
        if need(b) > budget:
            break
        best = b
    if best is None:
        one = vram_bytes(block_size=block_size, batch_size=1, **model)
        static = one["params"] + one["grads"] + one["adamw"]
        raise UserError(
            f"the model does not fit in {format_bytes(memory_bytes)} (with a {margin:.0%} margin) even at batch_size=1: "
            f"it needs {format_bytes(one['total_on_card'])}, of which weights, gradients and AdamW state "
            f"{format_bytes(static)}; lower block_size or the model size")
    return best, max(1, round(sequences / best))


# --- disk and host RAM ----------------------------------------------------------------------------

def disk_bytes(compressed_bytes: int, tokenizer: str = "gpt2") -> dict[str, int]:
    """Disk for a Wikipedia dump of compressed_bytes (bz2) through download, extract and prepare:
    the download itself, extract's zstd Parquet text, prepare's uint16 token shards (ratios measured
    in `dumps`; the XML is streamed, never stored). GPT-2 on Latin-script text: other scripts
    tokenise to ~2.5x as many token bytes. The bytes tokenizer stores 2 bytes per byte of text."""
    from growgpt.dumps import BYTE_TOKENS_PER_COMPRESSED, TEXT_PER_COMPRESSED, TOKENS_PER_COMPRESSED

    per_compressed = BYTE_TOKENS_PER_COMPRESSED if tokenizer == "bytes" else TOKENS_PER_COMPRESSED
    out = {
        "download": int(compressed_bytes),
        "extracted": int(compressed_bytes * TEXT_PER_COMPRESSED),
        "tokens": int(compressed_bytes * per_compressed),
    }
    out["total"] = sum(out.values())
    return out


CHECKPOINT_OVERHEAD_BYTES = 256 * 2**10  # config, RNG states, zip records (measured 10-110 KiB)


def checkpoint_bytes(n_params: int, with_optimizer: bool = True) -> dict[str, int]:
    """Disk for a run folder's checkpoints, for a model with n_params parameters (all of them, as
    `model_params` counts): ckpt.pt holds fp32 weights plus AdamW's two fp32 moments (12 bytes per
    parameter; 4 without the optimizer), best.pt the weights only (4 bytes per parameter), and
    model.safetensors the weights once more, without the tied copy of the embedding. peak adds the
    temporary file `atomic_save` writes before it replaces ckpt.pt."""
    ckpt = (12 if with_optimizer else 4) * n_params + CHECKPOINT_OVERHEAD_BYTES
    best = 4 * n_params + CHECKPOINT_OVERHEAD_BYTES
    weights = 4 * n_params + CHECKPOINT_OVERHEAD_BYTES  # + the JSON header
    return {"ckpt": ckpt, "best": best, "safetensors": weights, "total": ckpt + best + weights,
            "peak": 2 * ckpt + best + weights}


PYTHON_BASELINE_BYTES = 100 * 2**20  # interpreter, numpy, pyarrow for prepare (measured ~30 MB + imports)
TOKENIZER_BYTES = 64 * 2**20  # tiktoken's GPT-2 ranks (measured ~56 MB)
PY_TOKEN_BYTES = 32  # one id in the Python list tiktoken returns: pointer + int object (measured 31)


def ram_bytes_prepare(chars_per_token: float = 4.6, bytes_per_char: int = 1) -> dict[str, int]:
    """Host RAM of `growgpt prepare`: bounded by its shuffle buffer (prepare.BUFFER_BYTES characters
    of documents), never by the corpus. The buffer holds each document's text and its split key (up
    to the text's UTF-8 bytes); when it is flushed, tiktoken returns Python lists of ints (~32 bytes
    per token). chars_per_token: 4.6 for English Wikipedia, ~1 for Greek or other non-Latin scripts;
    bytes_per_char: 1 for ASCII, 2 or 4 for texts that Python stores wider."""
    from growgpt.prepare import BUFFER_BYTES

    out = {
        "buffer": 2 * BUFFER_BYTES * bytes_per_char,  # str + key bytes
        "token_lists": int(BUFFER_BYTES / chars_per_token * PY_TOKEN_BYTES),
        "tokenizer": TOKENIZER_BYTES,
        "python": PYTHON_BASELINE_BYTES,
    }
    out["total"] = sum(out.values())
    return out


def ram_bytes_loader(batch_size: int, block_size: int, device: str = "cuda") -> int:
    """Host RAM per micro-batch of the training loader: the (B, T + 1) int64 windows, x and y as
    int64, and their pinned copies for the transfer on CUDA. Token shards are memory-mapped: the OS
    page cache holds what is read and gives it back under pressure, so they are not counted."""
    rows = batch_size * (block_size + 1) * 8
    xy = 2 * batch_size * block_size * 8
    return rows + xy + (xy if _device_type(device) == "cuda" else 0)


# --- a measured probe ----------------------------------------------------------------------------

def probe_iter_seconds(n_layer: int, n_head: int, n_embd: int, block_size: int, vocab_size: int, batch_size: int,
                       device: str = "cpu", dtype: str = "float32", bias: bool = True, dropout: float = 0.0,
                       compile: bool = False, steps: int = 3) -> float:
    """Seconds for one micro-batch training step (forward, backward, AdamW), measured: build the
    GPT on device, run 1 warm-up step (which includes compilation when compile=True) and `steps`
    timed ones on random tokens, bf16/fp16 autocast and the fused AdamW on CUDA as in Trainer. An
    iteration of the run costs about gradient_accumulation_steps times this (the optimizer step is
    counted per micro-batch here, a small overestimate). The global RNG state is left untouched."""
    import torch

    from growgpt.hardware import pick_runtime
    from growgpt.model import GPT, GPTConfig

    rt = pick_runtime(device, dtype)
    cuda = rt.device_type == "cuda"
    config = GPTConfig(block_size=block_size, vocab_size=padded_vocab_size(vocab_size), n_layer=n_layer,
                       n_head=n_head, n_embd=n_embd, dropout=dropout, bias=bias)
    autocast = (torch.autocast(device_type=rt.device_type, dtype=rt.torch_dtype) if rt.dtype != "float32"
                else contextlib.nullcontext())
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    rng_devices = [torch.device(rt.device).index or 0] if cuda else []
    try:
        with torch.random.fork_rng(devices=rng_devices):
            if cuda:
                torch.backends.cuda.matmul.allow_tf32 = True
                torch.backends.cudnn.allow_tf32 = True
            torch.manual_seed(0)
            raw = GPT(config).to(rt.device)
            model = torch.compile(raw) if compile else raw
            optimizer = raw.configure_optimizer(0.1, 1e-4, (0.9, 0.95), rt.device_type)
            scaler = torch.amp.GradScaler(rt.device_type, enabled=(rt.dtype == "float16"))
            x = torch.randint(0, vocab_size, (batch_size, block_size), device=rt.device)
            y = torch.randint(0, vocab_size, (batch_size, block_size), device=rt.device)

            def step() -> None:
                with autocast:
                    loss = model(x, y)[1]
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(raw.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)

            def sync() -> None:
                if cuda:
                    torch.cuda.synchronize(rt.device)

            step()
            sync()
            t0 = time.perf_counter()
            for _ in range(max(1, steps)):
                step()
            sync()
            return (time.perf_counter() - t0) / max(1, steps)
    except torch.cuda.OutOfMemoryError:
        raise UserError(f"probe: out of memory at batch_size={batch_size}, block_size={block_size} on "
                        f"{rt.device}: lower batch_size") from None
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        if cuda:
            torch.cuda.empty_cache()


# --- time per micro-batch: derived or measured -------------------------------------------------------

def _live_cuda_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def iteration_timing(shape: dict, batch_size: int, device: str, dtype: str, bias: bool = True,
                     dropout: float = 0.0, gpu: str | None = None, probe: bool = True,
                     say=None) -> dict:
    """Seconds per micro-batch training step and how they were found (see the module docstring).

    shape: n_layer, n_head, n_embd, block_size, vocab_size. gpu: the card the estimate is for ("RTX
    4070"); None for this machine's device. say: called with one line before a probe runs.
    Returns seconds (None when unknown), basis (a sentence for the output), method ("probe",
    "derived" or None), flops (per micro-batch), peak, mfu (the assumption, for derived times)."""
    from growgpt.hardware import cpu_peak, format_flops, gpu_peak_flops

    flops = train_flops_per_token(**shape, bias=bias) * batch_size * shape["block_size"]
    out = {"seconds": None, "basis": "", "method": None, "flops": flops, "peak": None, "mfu": None}
    live = _live_cuda_name() if device == "cuda" else None
    card = gpu or live
    here = device != "cuda" or (live is not None and (gpu is None or _norm_name(gpu) in _norm_name(live)))

    def derived(peak: float, what: str) -> dict:
        out.update(seconds=flops / (peak * ASSUMED_MFU), method="derived", peak=peak, mfu=ASSUMED_MFU)
        out["basis"] = (f"time derived, not measured: {flops / 1e12:.3g} TFLOP per micro-batch "
                        f"(6 x parameters + attention, per token) / ({what} {format_flops(peak)} x "
                        f"{ASSUMED_MFU:.0%} MFU assumed)")
        return out

    if device == "cuda" and card is None:
        out["basis"] = "time unknown: no CUDA device here; name the card with --gpu (e.g. \"RTX 4070\")"
        return out
    if not here:  # a card elsewhere: its datasheet peak
        peak = gpu_peak_flops(card, dtype)
        if peak is None:
            out["basis"] = f"time unknown: no peak figure for {card!r} (known: A100, H100, L4, RTX 4070, ...)"
            return out
        return derived(peak, f"{card} dense {dtype} peak")
    if not probe:
        out["basis"] = "time not estimated (--no-probe)"
        return out
    if device == "cuda":
        peak, what = gpu_peak_flops(card, dtype), f"{card} dense {dtype} peak"
    elif device == "cpu":
        peak, what = cpu_peak(dtype).flops, f"this CPU's measured {dtype} matmul peak"
    else:
        peak, what = None, ""
    steps = 2
    if peak:
        step_s = flops / (peak * PROBE_PLAN_MFU)
        steps = 2 if 3 * step_s <= PROBE_BUDGET_S else 1
        if (steps + 1) * step_s > PROBE_BUDGET_S:  # one warm-up step and the timed ones
            out = derived(peak, what)
            out["basis"] += (f"; a timing probe would take ~{step_s:.0f} s per step on this {device}, over the "
                             f"{PROBE_BUDGET_S:.0f} s budget")
            return out
    if say is not None:
        say(f"timing probe: {steps} training step(s) of one micro-batch ({batch_size} x {shape['block_size']} "
            f"tokens: forward, backward, AdamW) on this machine's {device} ({dtype}), after a warm-up step")
    seconds = probe_iter_seconds(**shape, batch_size=batch_size, device=device, dtype=dtype, bias=bias,
                                 dropout=dropout, steps=steps)
    out.update(seconds=seconds, method="probe", peak=peak)
    out["basis"] = (f"time measured by a timing probe: {seconds:.3f} s per micro-batch step ({batch_size} x "
                    f"{shape['block_size']} tokens; forward, backward, AdamW; mean of {steps}) on this machine's "
                    f"{device} ({dtype})")
    return out


# --- formatting -----------------------------------------------------------------------------------

def format_bytes(n: float) -> str:
    """Binary units: 0 B, 1023 B, 1.5 KiB, 12.0 GiB."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1024:
        return f"{sign}{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024
        if n < 1024 or unit == "PiB":
            return f"{sign}{n:.1f} {unit}"
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# A whole grow plan: `growgpt estimate PLAN.toml`


def estimate_plan(plan_path, workdir=None, device: str | None = None, probe: bool = True,
                  memory: int | None = None, baseline: bool = False, compare_schedules: bool = False,
                  repeat: int = 1, repeat_grow: bool = False, gpu: str | None = None, say=None,
                  part_size: int | None = None) -> dict:
    """Per stage and in total, before anything runs: disk (download, text, tokens, checkpoints),
    RAM (prepare, loader), VRAM for the model at the plan's batch against the device's memory with
    the largest batch that fits, and time (`iteration_timing`: derived from FLOPs for a card that is
    not this machine's, else a probe bounded to PROBE_BUDGET_S). gpu: the card to estimate for (the
    device is then cuda, its memory the card's unless `memory` is given). say: called with a line
    before a probe runs."""
    from pathlib import Path

    from growgpt.grow import Sources, Workspace, cooldown_iters, plan_schedule
    from growgpt.plan import check_parts_exist, load_plan

    plan = load_plan(plan_path)
    ws = Workspace(workdir or Path(plan_path).parent / "work")
    # Offline, a dump plan's part sizes come from the listing kept in the workdir, or --part-size.
    sources = Sources(plan, ws, offline=True, part_size=part_size)
    check_parts_exist(plan, sources.available)
    m, t = plan.model, plan.train
    dev = "cuda" if gpu else (device or t.get("device", "auto"))
    if gpu and memory is None:
        memory = device_memory(gpu)
    if dev == "auto":
        import torch

        dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = t.get("dtype", "auto")
    if dtype == "auto":
        dtype = "bfloat16" if dev == "cuda" else "float32"
    batch, accum = t.get("batch_size", 12), t.get("gradient_accumulation_steps", 40)
    shape = dict(n_layer=m["n_layer"], n_head=m["n_head"], n_embd=m["n_embd"], block_size=m["block_size"],
                 vocab_size=FIXED_VOCAB_SIZES[plan.data.tokenizer])  # the plan's tokenizer decides the logits' width
    bias, dropout = m.get("bias", True), m.get("dropout", 0.0)
    n_params = model_params(**shape, bias=bias)
    vram = vram_bytes(**shape, batch_size=batch, dtype=dtype, bias=bias, dropout=dropout, device=dev)
    if memory is None and dev == "cuda":
        try:
            memory = device_memory()
        except Exception:  # no live device: leave the comparison out
            memory = None
    fit = None
    if memory:
        try:
            fit_shape = {k: v for k, v in shape.items() if k != "block_size"}
            fit = fit_batch(memory, batch * accum * m["block_size"], block_size=m["block_size"], **fit_shape,
                            bias=bias, dropout=dropout, dtype=dtype, device=dev)
        except UserError as e:
            fit = str(e)
    timing = iteration_timing(shape, batch, dev, dtype, bias=bias, dropout=dropout, gpu=gpu, probe=probe, say=say)
    seconds_per_micro = timing["seconds"]
    ckpt = checkpoint_bytes(n_params)
    stages, seen = [], set()
    for stage in plan.stages:
        new = [p for p in stage.parts if p not in seen]
        seen |= set(stage.parts)
        compressed = sum(sources.compressed_bytes(p) for p in new)
        disk = disk_bytes(compressed, plan.data.tokenizer)
        if plan.data.files:
            disk["total"] -= disk["download"]
            disk["download"] = 0  # local files: nothing to download
        iters = stage.iters + (cooldown_iters(plan, stage) if plan_schedule(plan) == "wsd" else 0)  # + its branch
        stages.append({
            "name": stage.name, "parts": stage.parts, "new_parts": new, "iters": iters,
            "tokens": iters * batch * accum * m["block_size"],
            "disk": {**disk, "checkpoints": ckpt["total"] * (2 if plan_schedule(plan) == "wsd" else 1)},
            "seconds": seconds_per_micro * accum * iters if seconds_per_micro else None,
        })

    def extra_row(name: str, iters: int, checkpoints: int) -> dict:
        """Training runs over parts already counted: checkpoints and time only."""
        return {"name": name, "parts": plan.all_parts, "new_parts": [], "iters": iters,
                "tokens": iters * batch * accum * m["block_size"],
                "disk": {"download": 0, "extracted": 0, "tokens": 0, "total": 0, "checkpoints": checkpoints * ckpt["total"]},
                "seconds": seconds_per_micro * accum * iters if seconds_per_micro else None}

    chain_iters = sum(s["iters"] for s in stages)
    if compare_schedules:  # the plan's stages again, with the other schedule (wsd: + a branch per stage)
        other = "cosine" if plan_schedule(plan) == "wsd" else "wsd"
        branches = sum(cooldown_iters(plan, s) for s in plan.stages) if other == "wsd" else 0
        stages.append(extra_row(f"{other} chain", sum(s.iters for s in plan.stages) + branches,
                                len(plan.stages) * (2 if other == "wsd" else 1)))
    if repeat > 1 and repeat_grow:
        stages.append(extra_row(f"grow x{repeat - 1} seeds", chain_iters * (repeat - 1),
                                len(plan.stages) * (repeat - 1)))
    if baseline:
        total_iters = sum(s.iters for s in plan.stages)
        runs = repeat if repeat > 1 else 1
        stages.append(extra_row("jump" if runs == 1 else f"jump x{runs} seeds", total_iters * runs, runs))
    disk_total = sum(s["disk"]["total"] + s["disk"]["checkpoints"] for s in stages)
    return {"device": dev, "dtype": dtype, "params": n_params, "batch_size": batch,
            "gradient_accumulation_steps": accum, "vram": vram, "memory": memory, "fit": fit,
            "ram_prepare": ram_bytes_prepare()["total"],
            "ram_loader": ram_bytes_loader(batch, m["block_size"], dev), "seconds_per_micro_batch": seconds_per_micro,
            "stages": stages, "disk_total": disk_total, "timing": timing, "gpu": gpu, "part_sizes": sources.origin,
            "seconds_total": sum(s["seconds"] for s in stages) if seconds_per_micro else None}


def format_estimate(e: dict) -> str:
    def dur(s):
        if s is None:
            return "–"
        return f"{s / 3600:.1f} h" if s >= 3600 else (f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s")

    target = f"{e['gpu']} (cuda)" if e.get("gpu") else e["device"]
    lines = [f"model: {e['params'] / 1e6:.1f}M parameters; device {target} ({e['dtype']}), "
             f"batch_size {e['batch_size']} x gradient_accumulation_steps {e['gradient_accumulation_steps']}"]
    v = e["vram"]
    where = "GPU memory" if e["device"] == "cuda" else "memory"
    lines.append(f"{where} for training: {format_bytes(v['total'])} (weights {format_bytes(v['params'])}, grads "
                 f"{format_bytes(v['grads'])}, AdamW {format_bytes(v['adamw'])}, activations "
                 f"{format_bytes(v['activations'])}, logits {format_bytes(v['logits'])})"
                 + (f" + CUDA context {format_bytes(v['cuda_context'])}" if e["device"] == "cuda" else ""))
    if e["memory"]:
        need = v.get("total_on_card", v["total"])
        verdict = "fits" if need <= e["memory"] else "does NOT fit"
        lines.append(f"device memory {format_bytes(e['memory'])}: {verdict}")
        if isinstance(e["fit"], tuple):
            lines.append(f"largest that fits: batch_size = {e['fit'][0]}, gradient_accumulation_steps = {e['fit'][1]} "
                         "(same tokens per step)")
        elif e["fit"]:
            lines.append(str(e["fit"]))
    lines.append(f"RAM: prepare ~{format_bytes(e['ram_prepare'] or 0)}, data loader ~{format_bytes(e['ram_loader'])}")
    lines += [f"{'stage':<14s}{'parts':<12s}{'new':<10s}{'iters':>8s}{'tokens':>12s}{'download':>11s}"
             f"{'text':>10s}{'tokens':>10s}{'ckpts':>10s}{'time':>10s}"]
    for s in e["stages"]:
        d = s["disk"]
        lines.append(f"{s['name']:<14s}{str(s['parts']):<12s}{str(s['new_parts']):<10s}{s['iters']:>8,d}"
                     f"{s['tokens']:>12,d}{format_bytes(d['download']):>11s}{format_bytes(d['extracted']):>10s}"
                     f"{format_bytes(d['tokens']):>10s}{format_bytes(d['checkpoints']):>10s}{dur(s['seconds']):>10s}")
    lines.append(f"total disk {format_bytes(e['disk_total'])}, total time {dur(e['seconds_total'])}")
    if e.get("part_sizes"):
        lines.append(f"part sizes: {e['part_sizes']}")
    timing = e.get("timing") or {}
    if timing.get("basis"):
        lines.append(timing["basis"])
    return "\n".join(lines)
