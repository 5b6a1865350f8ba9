"""`growgpt estimate PLAN.toml`: what a grow plan will need, per stage and in total, before anything runs.

Disk (download, text, token shards, checkpoints), host RAM, GPU memory at the plan's batch against
the device's (with the largest batch that fits) come from growgpt.estimate's arithmetic; part sizes
from the plan's local files, the dump mirror's listing (kept in the workdir for offline use) or
--part-size. The time of a micro-batch is found one of two ways, and the output says which:
derived (training FLOPs / (the card's dense peak x ASSUMED_MFU)) for a card that is not this
machine's, or measured by a short probe here (`probe_iter_seconds`, one real `optimizer_step`),
unless the probe would exceed PROBE_BUDGET_S; then it is derived from this device's peak too.
Trade-off: a derived time is only as good as the assumed MFU; a probe is exact but costs seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from growgpt import hardware
from growgpt.errors import UserError
from growgpt.estimate import (
    checkpoint_bytes,
    disk_bytes,
    fit_batch,
    format_bytes,
    model_params,
    ram_bytes_loader,
    ram_bytes_prepare,
    resolve_dtype,
    train_flops_per_token,
    vram_bytes,
)
from growgpt.grow import cooldown_iters, plan_schedule
from growgpt.model import GPT, GPTConfig, padded_vocab_size
from growgpt.plan import check_parts_exist, load_plan, plan_train_config
from growgpt.tokenizer import FIXED_VOCAB_SIZES
from growgpt.train import optimizer_step
from growgpt.workspace import Sources, Workspace

ASSUMED_MFU = 0.40  # derived times: this share of the device's dense peak (nanoGPT reaches ~40 % on A100s)
PROBE_BUDGET_S = 5.0  # the timing probe runs only when its steps should fit in this many seconds
PROBE_PLAN_MFU = 0.15  # the pessimistic MFU used to predict a probe's duration before running it


# --- a measured probe ----------------------------------------------------------------------------

def probe_iter_seconds(n_layer: int, n_head: int, n_embd: int, block_size: int, vocab_size: int, batch_size: int,
                       device: str = "cpu", dtype: str = "float32", bias: bool = True, dropout: float = 0.0,
                       compile: bool = False, steps: int = 3) -> float:
    """Seconds for one micro-batch training step (forward, backward, AdamW), measured: build the
    GPT on device, run 1 warm-up step (which includes compilation when compile=True) and `steps`
    timed ones on random tokens: the Trainer's `optimizer_step` with one micro-batch, bf16/fp16
    autocast and the fused AdamW on CUDA. An iteration of the run costs about gradient_accumulation_steps
    times this (the optimizer step is counted per micro-batch here, a small overestimate). The global
    RNG state is left untouched."""
    rt = hardware.pick_runtime(device, dtype)
    cuda = rt.device_type == "cuda"
    config = GPTConfig(block_size=block_size, vocab_size=padded_vocab_size(vocab_size), n_layer=n_layer,
                       n_head=n_head, n_embd=n_embd, dropout=dropout, bias=bias)
    autocast = torch.autocast(device_type=rt.device_type, dtype=rt.torch_dtype) if rt.dtype != "float32" else None
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
                optimizer_step(model, optimizer, scaler, lambda _micro: (x, y), 1, autocast=autocast, grad_clip=1.0,
                               raw_model=raw)

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
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def iteration_timing(shape: dict, batch_size: int, device: str, dtype: str, bias: bool = True,
                     dropout: float = 0.0, gpu: str | None = None, probe: bool = True,
                     say=None) -> dict:
    """Seconds per micro-batch training step and how they were found (see the module docstring).

    shape: n_layer, n_head, n_embd, block_size, vocab_size. gpu: the card the estimate is for ("RTX
    4070"); None for this machine's device. say: called with one line before a probe runs.
    Returns seconds (None when unknown), basis (a sentence for the output), method ("probe",
    "derived" or None), flops (per micro-batch), peak, mfu (the assumption, for derived times)."""
    flops = train_flops_per_token(**shape, bias=bias) * batch_size * shape["block_size"]
    out = {"seconds": None, "basis": "", "method": None, "flops": flops, "peak": None, "mfu": None}
    live = _live_cuda_name() if device == "cuda" else None
    card = gpu or live
    here = device != "cuda" or (live is not None and (
        gpu is None or hardware.gpu_name_key(gpu) in hardware.gpu_name_key(live)))

    def derived(peak: float, what: str) -> dict:
        out.update(seconds=flops / (peak * ASSUMED_MFU), method="derived", peak=peak, mfu=ASSUMED_MFU)
        out["basis"] = (f"time derived, not measured: {flops / 1e12:.3g} TFLOP per micro-batch "
                        f"(6 x parameters + attention, per token) / ({what} {hardware.format_flops(peak)} x "
                        f"{ASSUMED_MFU:.0%} MFU assumed)")
        return out

    if device == "cuda" and card is None:
        out["basis"] = "time unknown: no CUDA device here; name the card with --gpu (e.g. \"RTX 4070\")"
        return out
    if not here:  # a card elsewhere: its datasheet peak
        peak = hardware.gpu_peak_flops(card, dtype)
        if peak is None:
            out["basis"] = f"time unknown: no peak figure for {card!r} (known: A100, H100, L4, RTX 4070, ...)"
            return out
        return derived(peak, f"{card} dense {dtype} peak")
    if not probe:
        out["basis"] = "time not estimated (--no-probe)"
        return out
    if device == "cuda":
        peak, what = hardware.gpu_peak_flops(card, dtype), f"{card} dense {dtype} peak"
    elif device == "cpu":
        peak, what = hardware.cpu_peak(dtype).flops, f"this CPU's measured {dtype} matmul peak"
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
    plan = load_plan(plan_path)
    cfg = plan_train_config(plan)  # the plan's keys over TrainConfig's defaults (batch_size, dtype, ...)
    ws = Workspace(workdir or Path(plan_path).parent / "work")
    # Offline, a dump plan's part sizes come from the listing kept in the workdir, or --part-size.
    sources = Sources(plan, ws, offline=True, part_size=part_size)
    check_parts_exist(plan, sources.available)
    dev = "cuda" if gpu else (device or cfg.device)
    if gpu and memory is None:
        memory = hardware.device_memory(gpu)
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype(cfg.dtype, dev)
    batch, accum, block_size = cfg.batch_size, cfg.gradient_accumulation_steps, cfg.block_size
    shape = dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, block_size=block_size,
                 vocab_size=FIXED_VOCAB_SIZES[plan.data.tokenizer])  # the plan's tokenizer decides the logits' width
    bias, dropout = cfg.bias, cfg.dropout
    n_params = model_params(**shape, bias=bias)
    vram = vram_bytes(**shape, batch_size=batch, dtype=dtype, bias=bias, dropout=dropout, device=dev)
    if memory is None and dev == "cuda":
        try:
            memory = hardware.device_memory()
        except Exception:  # no live device: leave the comparison out
            memory = None
    fit = None
    if memory:
        try:
            fit_shape = {k: v for k, v in shape.items() if k != "block_size"}
            fit = fit_batch(memory, batch * accum * block_size, block_size=block_size, **fit_shape,
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
            "tokens": iters * batch * accum * block_size,
            "disk": {**disk, "checkpoints": ckpt["total"] * (2 if plan_schedule(plan) == "wsd" else 1)},
            "seconds": seconds_per_micro * accum * iters if seconds_per_micro else None,
        })

    def extra_row(name: str, iters: int, checkpoints: int) -> dict:
        """Training runs over parts already counted: checkpoints and time only."""
        return {"name": name, "parts": plan.all_parts, "new_parts": [], "iters": iters,
                "tokens": iters * batch * accum * block_size,
                "disk": {"download": 0, "extracted": 0, "tokens": 0, "total": 0,
                         "checkpoints": checkpoints * ckpt["total"]},
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
            "ram_loader": ram_bytes_loader(batch, block_size, dev), "seconds_per_micro_batch": seconds_per_micro,
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
