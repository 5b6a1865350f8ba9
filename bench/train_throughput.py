#!/usr/bin/env python
"""Training throughput of growgpt on CPU, against the CPU's measured fp32 matmul peak.

    python bench/train_throughput.py [--iters N] [--warmup N] [--compile] [--nanogpt PATH] [--threads N]
    python bench/train_throughput.py --gpu [--gpu-batch 16] [--gpu-accum 4]    # GPT-2 124M MFU on a GPU

The model is the issue's: n_layer=4, n_head=4, n_embd=256, block_size=256, batch_size=16,
gradient_accumulation_steps=1, GPT-2 vocabulary (50257, padded to 50304), dropout 0, fp32, device cpu.
The data is synthetic (random GPT-2 token ids written as a growgpt dataset in a temporary folder), so
the bench needs neither a corpus nor a tokenizer; throughput does not depend on the token values.

Rows (all timed in the same process, round-robin one step at a time so that other load on the
machine hits every row alike; best and median of the timed steps):

  growgpt Trainer      growgpt.train.Trainer.train_step, as `growgpt train` runs it (batches from the
                       memmapped shards, lr schedule, grad clipping, AdamW), steady state only: the
                       final evaluation and checkpoint writes of a real run are not timed.
  reference loop       a bare nanoGPT-style step on growgpt's GPT: nanoGPT's get_batch, then
                       growgpt.train.optimizer_step (forward, backward, clip, AdamW, zero_grad) with one
                       micro-batch. Shows what the Trainer's machinery (shards, sampler, schedule) costs.
  nanoGPT (--nanogpt)  the same bare step on nanoGPT's own GPT (PATH/model.py).
  ... compiled         (--compile) the same with torch.compile (inductor; compile time is reported
                       separately and not counted).
  Note: the first Trainer applies growgpt.hardware.keep_freed_cpu_memory() (glibc keeps freed big
  blocks instead of unmapping them; see NOTES.md), process-wide, so every row runs with it.

Achieved FLOP/s = model.flops_per_token() (6N + 12*L*C*T, as nanoGPT/PaLM) x tokens per step / time;
"% peak" divides that by the best fp32 matmul rate measured here (best of several sizes, measured
before and after the training rows). Target from the issue: >= 35 % (nanoGPT's train.py on this CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import io
import json
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

MODEL = dict(n_layer=4, n_head=4, n_embd=256, block_size=256, dropout=0.0, bias=True)
BATCH = dict(batch_size=16, gradient_accumulation_steps=1)
GPT2_VOCAB = 50257
LR, WEIGHT_DECAY, BETAS, GRAD_CLIP, SEED = 6e-4, 0.1, (0.9, 0.95), 1.0, 1337


# --- synthetic dataset ------------------------------------------------------------------------------

def write_dataset(data_dir: Path, train_tokens: int = 1_000_000, val_tokens: int = 100_000, seed: int = 0) -> None:
    """A growgpt DATA_DIR of random GPT-2 token ids: train-00000.bin, val-00000.bin, manifest.json."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", train_tokens), ("val", val_tokens)):
        name = f"{split}-00000.bin"
        rng.integers(0, GPT2_VOCAB, size=n, dtype=np.uint16).tofile(data_dir / name)
        splits[split] = {"tokens": n, "documents": 1, "shards": [{"file": name, "tokens": n}]}
    manifest = {
        "format": "growgpt-tokens", "version": 1,
        "tokenizer": {"name": "gpt2", "vocab_size": GPT2_VOCAB, "fingerprint": "gpt2-r50k"},
        "vocab_size": GPT2_VOCAB, "dtype": "uint16", "val_fraction": 0.1, "seed": seed, "txt_docs": "file",
        "splits": splits, "sources": [],
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    (data_dir / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")


# --- peak ---------------------------------------------------------------------------------------------

def matmul_peak(sizes=(1024, 2048, 4096), repeats: int = 5,
                dtype: torch.dtype = torch.float32) -> tuple[float, dict[int, float]]:
    """Best square-matmul rate over a few sizes (best of `repeats` each, after a warm-up)."""
    rates = {}
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out = torch.empty(n, n, dtype=dtype)
        torch.mm(a, b, out=out)
        torch.mm(a, b, out=out)
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            best = min(best, time.perf_counter() - t0)
        rates[n] = 2 * n**3 / best
    return max(rates.values()), rates


# --- rows ---------------------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    flops_per_iter: float
    tokens_per_iter: int
    step: Callable[[], float] | None = None  # one optimizer step; returns the loss
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)  # process CPU seconds per timed step
    warmup_s: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    note: str = ""
    dtype: str = "float32"  # whose matmul peak '% peak' divides by

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def trainer_row(name: str, data_dir: Path, out_dir: Path, peak: float, compile_model: bool,
                dtype: str = "float32") -> Row:
    from growgpt.config import load_config
    from growgpt.train import Trainer, lr_at

    cfg = load_config(base=dict(
        dataset=str(data_dir), out_dir=str(out_dir), device="cpu", dtype=dtype, compile=compile_model,
        max_iters=10**6, eval_interval=10**6, eval_iters=1, log_interval=1, learning_rate=LR,
        weight_decay=WEIGHT_DECAY, beta1=BETAS[0], beta2=BETAS[1], grad_clip=GRAD_CLIP, warmup_iters=10,
        lr_decay_iters=10**6, seed=SEED, peak_flops=peak, **MODEL, **BATCH))
    trainer = Trainer(cfg, verbose=False)

    def step() -> float:
        loss = trainer.train_step(lr_at(trainer.iter_num, cfg))
        trainer.iter_num += 1
        return loss.item()  # the loop syncs on the loss every log_interval (= 1 here)

    return Row(name, trainer.raw_model.flops_per_token() * trainer.tokens_per_iter, trainer.tokens_per_iter, step,
               dtype=dtype)


def bare_row(name: str, model: torch.nn.Module, flops_per_token: float, data_dir: Path, compile_model: bool) -> Row:
    """nanoGPT's train.py step with gradient_accumulation_steps=1, fp32 (its GradScaler is a no-op then):
    nanoGPT's get_batch and AdamW groups, growgpt's optimizer_step."""
    from growgpt.train import optimizer_step

    B, T = BATCH["batch_size"], MODEL["block_size"]
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=BETAS)
    fwd = torch.compile(model) if compile_model else model
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    train_bin = data_dir / "train-00000.bin"

    def get_batch():
        data = np.memmap(train_bin, dtype=np.uint16, mode="r")  # recreated per batch, as nanoGPT does
        ix = torch.randint(len(data) - T, (B,))
        x = torch.stack([torch.from_numpy(data[i:i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
        return x, y

    def step() -> float:
        loss = optimizer_step(fwd, optimizer, scaler, lambda _micro: get_batch(), 1, grad_clip=GRAD_CLIP,
                              raw_model=model, lr=LR)
        return loss.item()

    model.train()
    return Row(name, flops_per_token * B * T, B * T, step)


def reference_row(name: str, data_dir: Path, compile_model: bool) -> Row:
    from growgpt.model import GPT, GPTConfig, padded_vocab_size

    torch.manual_seed(SEED)
    model = GPT(GPTConfig(vocab_size=padded_vocab_size(GPT2_VOCAB), **MODEL))
    return bare_row(name, model, model.flops_per_token(), data_dir, compile_model)


def nanogpt_row(name: str, path: Path, data_dir: Path, compile_model: bool) -> Row:
    spec = importlib.util.spec_from_file_location("nanogpt_model", path / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fields = getattr(module.GPTConfig, "__dataclass_fields__", {})
    args = dict(vocab_size=50304, **MODEL)
    torch.manual_seed(SEED)
    with contextlib.redirect_stdout(io.StringIO()):  # nanoGPT prints its parameter count
        model = module.GPT(module.GPTConfig(**{k: v for k, v in args.items() if k in fields}))
    n = model.get_num_params()
    flops_per_token = 6 * n + 12 * MODEL["n_layer"] * MODEL["n_embd"] * MODEL["block_size"]  # its estimate_mfu
    return bare_row(name, model, flops_per_token, data_dir, compile_model)


# --- timing -------------------------------------------------------------------------------------------

def run_rows(rows: list[Row], warmup: int, iters: int, label: str) -> None:
    for row in rows:
        for _ in range(warmup):
            t0 = time.perf_counter()
            row.losses.append(row.step())
            row.warmup_s.append(time.perf_counter() - t0)
        print(f"  [{label}] {row.name}: warm-up {' '.join(f'{t:.1f}s' for t in row.warmup_s)}", flush=True)
    for _ in range(iters):  # round-robin: background load hits every row alike
        for row in rows:
            c0, t0 = time.process_time(), time.perf_counter()
            row.losses.append(row.step())
            row.times.append(time.perf_counter() - t0)
            row.cpu_times.append(time.process_time() - c0)
    for row in rows:
        if not all(math.isfinite(v) for v in row.losses):
            raise SystemExit(f"{row.name}: non-finite loss {row.losses}")
        print(f"  [{label}] {row.name}: " + " ".join(f"{t * 1000:.0f}" for t in row.times) + " ms", flush=True)


def print_table(rows: list[Row], peaks: dict[str, float]) -> None:
    head = (f"{'row':<34} {'ms/iter best':>12} {'median':>8} {'tok/s':>8} {'GFLOP/s':>8} {'% peak':>7} "
            f"{'(median)':>8} {'cpu/wall':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        peak = peaks[r.dtype]
        achieved = r.flops_per_iter / r.best
        median_fraction = r.flops_per_iter / r.median / peak
        print(f"{r.name:<34} {r.best * 1000:>12.0f} {r.median * 1000:>8.0f} {r.tokens_per_iter / r.best:>8.0f} "
              f"{achieved / 1e9:>8.1f} {100 * achieved / peak:>6.1f}% {100 * median_fraction:>7.1f}% "
              f"{r.cpu_times[r.times.index(r.best)] / r.best:>8.2f}"
              + (f"  {r.note}" if r.note else ""))


GPU_MODEL = dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, dropout=0.0, bias=True)  # GPT-2 124M


def gpu_main(args) -> None:
    """--gpu: the issue's GPU target, GPT-2 124M at block 1024, bf16 autocast, torch.compile, fused
    AdamW, through the real Trainer; MFU against the card's dense bf16 peak (growgpt.hardware table)."""
    from growgpt.config import load_config
    from growgpt.train import Trainer, lr_at

    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs CUDA")
    name = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory(prefix="growgpt-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        write_dataset(data_dir, train_tokens=20_000_000, val_tokens=1_000_000)
        cfg = load_config(base=dict(
            dataset=str(data_dir), out_dir=str(Path(tmp) / "out"), device="cuda", dtype="bfloat16",
            compile=not args.no_compile, max_iters=10**6, eval_interval=10**6, eval_iters=1, log_interval=1,
            learning_rate=6e-4, warmup_iters=10, lr_decay_iters=10**6, seed=SEED, batch_size=args.gpu_batch,
            gradient_accumulation_steps=args.gpu_accum, **GPU_MODEL))
        trainer = Trainer(cfg, verbose=False)
        flops = trainer.raw_model.flops_per_token() * trainer.tokens_per_iter
        times = []
        for _ in range(args.warmup + args.iters + 2):  # compile happens in the first steps
            torch.cuda.synchronize()
            t = time.perf_counter()
            trainer.train_step(lr_at(trainer.iter_num, cfg)).item()
            trainer.iter_num += 1
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        timed = sorted(times[args.warmup + 2:])
        best, median = timed[0], timed[len(timed) // 2]
        print(f"device {name}, peak {trainer.peak / 1e12:.0f} TFLOP/s ({trainer.peak_source}); GPT-2 124M, block 1024, "
              f"batch {args.gpu_batch} x accum {args.gpu_accum}, bf16, compile={not args.no_compile}")
        print(f"first steps (compile) {times[0]:.1f} s; ms/iter best {best * 1e3:.0f}, median {median * 1e3:.0f}; "
              f"tokens/s {trainer.tokens_per_iter / median:,.0f}; MFU best {100 * flops / best / trainer.peak:.1f} %, "
              f"median {100 * flops / median / trainer.peak:.1f} % (target >= 50 % on H100); "
              f"max memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    print(f"rerun: {shlex.join(['python', 'bench/train_throughput.py', *sys.argv[1:]])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpu", action="store_true", help="the GPU target instead: GPT-2 124M, block 1024, bf16, compile")
    ap.add_argument("--gpu-batch", type=int, default=16, help="--gpu micro batch (default 16)")
    ap.add_argument("--gpu-accum", type=int, default=4, help="--gpu gradient accumulation steps (default 4)")
    ap.add_argument("--no-compile", action="store_true", help="--gpu without torch.compile")
    ap.add_argument("--iters", type=int, default=4, help="timed steps per row (default 4)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per row first (default 1)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd variants (slow to compile)")
    ap.add_argument("--nanogpt", type=Path, help="a nanoGPT checkout: time its GPT (PATH/model.py) as well")
    ap.add_argument("--bf16", action="store_true",
                    help="also time the Trainer with dtype=bfloat16 (autocast; %% of the bf16 matmul peak)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = ap.parse_args()
    if args.iters < 1 or args.warmup < 0:
        ap.error("--iters must be >= 1 and --warmup >= 0")
    if args.gpu:
        return gpu_main(args)
    if args.nanogpt is not None and not (args.nanogpt / "model.py").is_file():
        ap.error(f"--nanogpt {args.nanogpt}: no model.py there")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compile and args.warmup < 1:
        args.warmup = 1  # the first call compiles

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), python {platform.python_version()}")
    t_start = time.perf_counter()
    dtypes = {"float32": torch.float32, **({"bfloat16": torch.bfloat16} if args.bf16 else {})}
    rates: dict[str, list[dict[int, float]]] = {name: [matmul_peak(dtype=dt)[1]] for name, dt in dtypes.items()}
    from growgpt.hardware import measure_cpu_matmul_flops

    growgpt_peak = measure_cpu_matmul_flops()
    for name, (r,) in rates.items():
        print(f"{name} matmul GFLOP/s: " + ", ".join(f"{n}^3 {v / 1e9:.0f}" for n, v in r.items()))
    print(f"growgpt.hardware.measure_cpu_matmul_flops(): {growgpt_peak / 1e9:.0f} GFLOP/s", flush=True)
    peak0 = max(rates["float32"][0].values())

    with tempfile.TemporaryDirectory(prefix="growgpt-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        write_dataset(data_dir)
        print(f"dataset: synthetic GPT-2 ids in {data_dir}")
        shape = ", ".join(f"{k}={v}" for k, v in {**MODEL, **BATCH}.items())
        print(f"model: {shape}, vocab {GPT2_VOCAB} -> 50304, fp32, cpu; {args.warmup} warm-up + {args.iters} "
              "timed steps per row", flush=True)

        def trainers(suffix: str, tag: str) -> list[Row]:
            out = [trainer_row(f"growgpt Trainer{suffix}", data_dir, Path(tmp) / f"out{tag}", peak0, False)]
            if args.compile:
                out.append(trainer_row(f"growgpt Trainer compiled{suffix}", data_dir, Path(tmp) / f"out{tag}-c",
                                       peak0, True))
            if args.bf16:
                out.append(trainer_row(f"growgpt Trainer bf16{suffix}", data_dir, Path(tmp) / f"out{tag}-b",
                                       peak0, False, dtype="bfloat16"))
            return out

        rows = trainers("", "")
        rows.insert(1, reference_row("reference loop (growgpt GPT)", data_dir, False))
        if args.nanogpt:
            rows.insert(2, nanogpt_row("nanoGPT GPT, same loop", args.nanogpt, data_dir, False))
        if args.compile:
            rows.append(reference_row("reference loop, compiled", data_dir, True))
            if args.nanogpt:
                rows.append(nanogpt_row("nanoGPT GPT, compiled", args.nanogpt, data_dir, True))
        run_rows(rows, args.warmup, args.iters, "steps")
        for r in rows:
            r.step = None  # free the models before the next phase
        for r in rows:
            if "compiled" in r.name and r.warmup_s:
                r.note = f"compile + 1st step {r.warmup_s[0]:.0f} s"

    for name, dt in dtypes.items():
        rates[name].append(matmul_peak(dtype=dt)[1])
        print(f"{name} matmul GFLOP/s again: " + ", ".join(f"{n}^3 {v / 1e9:.0f}" for n, v in rates[name][1].items()))
    peaks = {name: max(max(r.values()) for r in rs) for name, rs in rates.items()}
    print("\n'% peak' divides by the best matmul rate of both measurements: "
          + ", ".join(f"{name} {p / 1e9:.0f} GFLOP/s" for name, p in peaks.items())
          + f"; {rows[0].flops_per_iter / rows[0].tokens_per_iter / 1e6:.1f} MFLOP/token, "
          f"{rows[0].tokens_per_iter} tokens/iter; target >= 35 % of the fp32 peak\n")
    print_table(rows, peaks)
    main_row = rows[0]
    frac = main_row.flops_per_iter / main_row.best / peaks["float32"]
    print(f"\ngrowgpt Trainer: {100 * frac:.1f} % of the fp32 matmul peak (best step) -> "
          f"{'meets' if frac >= 0.35 else 'BELOW'} the 35 % target. Bench time {time.perf_counter() - t_start:.0f} s. "
          "On a shared CPU compare best-of figures and rerun.")
    if args.json:
        args.json.write_text(json.dumps({
            "torch": torch.__version__, "threads": torch.get_num_threads(), "peak_flops": peaks,
            "matmul_rates": {k: [{str(n): v for n, v in r.items()} for r in rs] for k, rs in rates.items()},
            "growgpt_measure_cpu_matmul_flops": growgpt_peak,
            "rows": [{"name": r.name, "dtype": r.dtype, "times_s": r.times, "warmup_s": r.warmup_s,
                      "flops_per_iter": r.flops_per_iter, "tokens_per_iter": r.tokens_per_iter,
                      "best_fraction_of_peak": r.flops_per_iter / r.best / peaks[r.dtype]} for r in rows]},
            indent=1), encoding="utf-8")
    print(f"\nrerun: {shlex.join(['python', 'bench/train_throughput.py', *sys.argv[1:]])}")


if __name__ == "__main__":
    main()
