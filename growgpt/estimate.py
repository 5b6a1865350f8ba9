"""Resource arithmetic: parameters, training FLOPs, GPU memory of a training step, the batch that fits a
card, disk and host RAM. Plain numbers (model shape, batch, dtype) in, bytes out: the plan checker, the
trainer and `growgpt estimate` ask "does this fit on a 4070?" without building a model.

`vram_bytes` models, tensor by tensor, what one optimizer step (`growgpt.train.optimizer_step`) keeps
alive at its three candidate peaks (start of backward, end of backward, the AdamW step); tests check
it against PyTorch's own accounting (saved tensors, the CPU profiler, CUDA's max_memory_allocated).
Trade-off: it models eager PyTorch, so under torch.compile it is an upper bound (Inductor recomputes
pointwise ops rather than saving them). The CUDA context is counted apart (`total_on_card`).
The estimate of a whole grow plan, with its time, lives in growgpt.plan_estimate.
"""

from __future__ import annotations

import math

from growgpt.errors import UserError
from growgpt.model import padded_vocab_size

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
CUDA_CONTEXT_BYTES = 500 * 2**20  # CUDA context + kernel images + allocator slack, outside max_memory_allocated
WORKSPACE_BYTES = 64 * 2**20  # cuBLAS + cuBLASLt workspaces (counted by max_memory_allocated)
FIT_MARGIN = 0.10


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


def resolve_dtype(dtype: str, device_type: str) -> str:
    """dtype "auto" as the estimate takes it: bfloat16 on CUDA, float32 elsewhere; others as given."""
    if dtype == "auto":
        return "bfloat16" if device_type == "cuda" else "float32"
    return dtype


def _dtype_bytes(dtype: str, device_type: str) -> int:
    dtype = resolve_dtype(dtype, device_type)
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
    """Peak memory of a training step of micro-batches of batch_size x block_size, in bytes (each
    term and why: NOTES.md, "GPU memory of a training step").

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

def batch_candidates(sequences: int) -> list[int]:
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
    for b in batch_candidates(sequences):  # ascending; the estimate grows with b
        if need(b) > budget:
            break
        best = b
    if best is None:
        one = vram_bytes(block_size=block_size, batch_size=1, **model)
        static = one["params"] + one["grads"] + one["adamw"]
        raise UserError(
            f"the model does not fit in {format_bytes(memory_bytes)} (with a {margin:.0%} margin) even at "
            f"batch_size=1: it needs {format_bytes(one['total_on_card'])}, of which weights, gradients and AdamW state "
            f"{format_bytes(static)}; lower block_size or the model size")
    return best, max(1, round(sequences / best))


# --- disk and host RAM ----------------------------------------------------------------------------

def disk_bytes(compressed_bytes: int, tokenizer: str = "gpt2") -> dict[str, int]:
    """Disk for a Wikipedia dump of compressed_bytes (bz2) through download, extract and prepare:
    the download itself, extract's zstd Parquet text, prepare's uint16 token shards (ratios measured
    in `dumps`; the XML is streamed, never stored). GPT-2 on Latin-script text: other scripts
    tokenise to ~2.5x as many token bytes. The bytes tokenizer stores 2 bytes per byte of text."""
    from growgpt.wiki.dumps import BYTE_TOKENS_PER_COMPRESSED, TEXT_PER_COMPRESSED, TOKENS_PER_COMPRESSED

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

