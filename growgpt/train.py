"""Training: nanoGPT's loop, made to resume exactly and to fail loudly.

One process or many (torchrun: DDP over NCCL on GPU, gloo on CPU; accumulation steps divided across
ranks as in nanoGPT). Per iteration: that iteration's global micro-batches (`data`), AdamW with a
warmup then cosine or WSD decay (`lr_at`), gradient clipping, bf16 autocast on CUDA (fp16 + GradScaler
without bf16), fp32 on CPU. One `optimizer_step` serves the Trainer, the estimate's probe and the
throughput bench, so what they time is what trains.

Exact resume: a checkpoint holds model, optimizer, scaler, iteration, best val loss and every RNG
state, and batches depend only on (seed, iteration, micro-step), so a resumed run computes what an
uninterrupted one does (bitwise on CPU). schedule_start = "resume" starts a fresh warmup and decay at
the checkpoint (as a grow stage does); a changed learning rate, dataset or schedule key gets one line
naming the next step's LR.

Failing loudly: NaN/inf stops the run before a bad checkpoint is written, out-of-memory names the
knobs, a model or batch that cannot fit the device is refused before allocation (estimate's
arithmetic), another tokenizer's dataset is refused, and an earlier run in out_dir is never
overwritten (`--overwrite` moves it aside). The console prints plain lines that read the same in a
log file: loss, lr, ms/iter, tok/s, MFU, progress and ETA.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, cast

import torch

from growgpt import checkpoint as ckpt_io
from growgpt.config import SCHEDULE_START_RESUME, TrainConfig, cooldown_start
from growgpt.data import eval_generator, micro_batch_generator, open_dataset
from growgpt.errors import UserError
from growgpt.fsutil import fsync_dir
from growgpt.hardware import Runtime, format_flops, keep_freed_cpu_memory, memory_bytes, peak_flops, pick_runtime
from growgpt.metrics import METRICS_FILE, MetricsLogger, bits_per_byte, perplexity, truncate_metrics
from growgpt.model import GPT, GPTConfig, load_gpt2_weights, padded_vocab_size
from growgpt.tokenizer import same_tokenizer

MODEL_SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias")
# What an earlier run leaves in its out_dir, and a new run from scratch would replace or append to.
RUN_OUTPUTS = (ckpt_io.CHECKPOINT, ckpt_io.BEST, ckpt_io.SAFETENSORS, METRICS_FILE)
# The keys that shape the learning rate; when one of them (or learning_rate, or the data) differs from
# the checkpoint's config on resume, the trainer says which LR the next step gets.
SCHEDULE_KEYS = ("decay_lr", "schedule", "schedule_start", "warmup_iters", "lr_decay_iters", "min_lr",
                 "cooldown_fraction", "cooldown_shape")
DATA_KEYS = ("dataset", "parts", "replay", "new_parts", "new_fraction")
# Checkpoint entry: the iteration a schedule_start = "resume" was resolved to (absent otherwise).
SCHEDULE_FROM_RESUME = "schedule_start_from_resume"
# On CPU, an iteration of at least this many micro-batches of at most this many tokens gets a hint.
CPU_ACCUM_HINT_STEPS = 8
CPU_ACCUM_HINT_TOKENS = 16384


def _same_setting(key: str, saved, value) -> bool:
    """A checkpoint's config value and this run's: the dataset as the folder it names."""
    if key == "dataset" and isinstance(saved, str) and isinstance(value, str) and saved != value:
        return os.path.realpath(saved) == os.path.realpath(value)
    return saved == value


def format_duration(seconds: float) -> str:
    """A duration for the console: 42s, 3m05s, 1h02m, 2d03h."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def evals_after(it: int, cfg: TrainConfig) -> int:
    """Evaluations the loop still runs after iteration count `it` (exclusive) up to max_iters: one per
    multiple of eval_interval, and one at max_iters."""
    if it >= cfg.max_iters:
        return 0
    n = cfg.max_iters // cfg.eval_interval - it // cfg.eval_interval
    return n + (1 if cfg.max_iters % cfg.eval_interval else 0)


def cpu_accum_hint(cfg: TrainConfig, device_type: str, accum_per_rank: int) -> str | None:
    """On CPU, many small micro-batches per iteration (nanoGPT's default is 40, sized for 8 GPUs)
    make every iteration that many forward/backward passes: one line saying so, or None."""
    micro_tokens = cfg.batch_size * cfg.block_size
    if device_type != "cpu" or accum_per_rank < CPU_ACCUM_HINT_STEPS or micro_tokens > CPU_ACCUM_HINT_TOKENS:
        return None
    return (f"hint: each iteration is {accum_per_rank} forward/backward passes of {cfg.batch_size} x "
            f"{cfg.block_size} tokens (gradient_accumulation_steps = {cfg.gradient_accumulation_steps}; nanoGPT's 40 "
            f"is sized for 8 GPUs). On CPU, --set gradient_accumulation_steps=1 makes iterations "
            f"{accum_per_rank}x faster (and {accum_per_rank}x smaller); raising batch_size instead keeps more "
            "tokens per pass")


def lr_at(it: int, cfg: TrainConfig) -> float:
    """The learning rate of iteration `it`. Both schedules count from schedule_start (0 for a plain run;
    a grow stage's first iteration otherwise), warm up linearly to learning_rate over warmup_iters and
    end at min_lr at lr_decay_iters (the horizon), after which they stay there.

    cosine: cosine decay from the end of the warmup to the horizon.
    wsd: constant learning_rate until cooldown_start(cfg), then a decay to min_lr at the horizon whose
    factor is 1 - p (linear) or 1 - sqrt(p) (1-sqrt: lower than linear, fastest at first), p going from
    0 to 1 through the cooldown.
    constant: learning_rate from the end of the warmup on, whatever the horizon (a wsd trunk).
    decay_lr = false: learning_rate throughout, no warmup either.

    schedule_start = "resume" must be resolved to an iteration first (the Trainer does, on resume)."""
    if not cfg.decay_lr:
        return cfg.learning_rate
    if not isinstance(cfg.schedule_start, int):
        raise ValueError(f"schedule_start = {cfg.schedule_start!r} is not resolved to an iteration yet")
    step = it - cfg.schedule_start
    if step < cfg.warmup_iters:  # the same warmup for both schedules
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    if cfg.schedule == "constant":  # a wsd trunk: never decays
        return cfg.learning_rate
    if step >= cfg.lr_decay_iters:
        return cfg.min_lr
    if cfg.schedule == "wsd":
        decay_from = cooldown_start(cfg) - cfg.schedule_start
        if step <= decay_from:
            return cfg.learning_rate
        progress = (step - decay_from) / (cfg.lr_decay_iters - decay_from)  # in (0, 1); the cooldown >= 1 iter
        factor = 1.0 - (math.sqrt(progress) if cfg.cooldown_shape == "1-sqrt" else progress)
        return cfg.min_lr + factor * (cfg.learning_rate - cfg.min_lr)
    progress = (step - cfg.warmup_iters) / max(1, cfg.lr_decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


@dataclass
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Distributed:
    if int(os.environ.get("RANK", -1)) < 0:
        return Distributed()
    import torch.distributed as dist

    dist_info = Distributed(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"]))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(dist_info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist_info


# --- the run folder --------------------------------------------------------------------------------

def earlier_run_files(out_dir: Path) -> list[str]:
    """The names of RUN_OUTPUTS present in out_dir (an empty metrics.jsonl does not count)."""
    found = []
    for name in RUN_OUTPUTS:
        path = out_dir / name
        if path.is_file() and (name != METRICS_FILE or path.stat().st_size > 0):
            found.append(name)
    return found


def move_aside(folder: Path) -> Path:
    """Rename `folder` to FOLDER.old-<YYYYmmdd-HHMMSS> (-2, -3, ... if that is taken) and return the
    new path. Nothing is deleted: the old run stays whole, under another name."""
    folder = Path(os.path.abspath(folder))
    if Path.cwd() == folder or folder in Path.cwd().parents:
        raise UserError(f"cannot move {folder} aside: it holds the current folder; give the run a folder of its own")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = folder.with_name(f"{folder.name}.old-{stamp}"), 2
    while target.exists() or target.is_symlink():
        target, n = folder.with_name(f"{folder.name}.old-{stamp}-{n}"), n + 1
    try:
        os.rename(folder, target)
    except OSError as e:
        raise UserError(f"cannot move {folder} aside to {target}: {e.strerror or e}") from None
    fsync_dir(folder.parent)
    return target


def check_out_dir(cfg: TrainConfig, overwrite: bool, rank: int) -> bool:
    """Make sure a run from scratch (or from GPT-2 weights) does not land on an earlier run: refuse
    it, or with `overwrite` return True: this process is to move the earlier run aside (move_aside)
    once everything else has been checked, so a mistake found later leaves the folder where it is.

    Runs before the process group exists. Only rank 0 moves the folder; the other ranks skip the
    check when overwriting (they might see the folder mid-move) and never touch out_dir anyway
    (only rank 0 writes). Without `overwrite`, every rank sees the same files and refuses alike."""
    out_dir = Path(cfg.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"config key 'out_dir' = {str(out_dir)!r} is a file, not a folder")
    if cfg.init_from == "resume" or (overwrite and rank != 0) or not out_dir.is_dir():
        return False
    found = earlier_run_files(out_dir)
    if found and not overwrite:
        start = "from scratch" if cfg.init_from == "scratch" else f"from the weights {cfg.init_from}"
        resume = ("Continue it with --set init_from=resume, or pass" if ckpt_io.CHECKPOINT in found
                  else f"It cannot be resumed (no {ckpt_io.CHECKPOINT}): pass")
        raise UserError(
            f"{out_dir} already holds a run ({', '.join(found)}): training {start} would replace it. {resume} "
            f"--overwrite to move it aside to {out_dir.name}.old-<time> and start afresh, or choose another out_dir")
    return bool(found)


# --- memory ------------------------------------------------------------------------------------------

def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator's RuntimeError."""
    if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        marker in text for marker in ("out of memory", "can't allocate memory", "not enough memory"))


def _all_reduce_sum(values: torch.Tensor, dist_info: Distributed) -> torch.Tensor:
    if dist_info.enabled:
        import torch.distributed as dist

        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


# --- one optimizer step ------------------------------------------------------------------------------

class EvalLosses(TypedDict):
    """Trainer.evaluate: the mean loss of each split and its bits per byte (None without a byte table)."""
    train: float
    train_bpb: float | None
    val: float
    val_bpb: float | None


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                   micro_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]], steps: int, *,
                   autocast: contextlib.AbstractContextManager | None = None, grad_clip: float = 0.0,
                   raw_model: torch.nn.Module | None = None,
                   no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
                   lr: float | None = None) -> torch.Tensor:
    """One optimizer step over `steps` accumulated micro-batches, as the Trainer takes it.

    micro_batch(k) gives the k-th (x, y) on the device; each loss is divided by `steps`, scaled by the
    GradScaler (a no-op unless it is enabled, for fp16) and backpropagated; then the gradients are
    unscaled and clipped to grad_clip (0: no clipping), the optimizer steps and the gradients are freed.
    model runs the forward (it may be compiled or DDP-wrapped); raw_model, whose parameters are clipped,
    defaults to it. no_sync (DDP's model.no_sync) is entered for every micro-batch but the last, so
    gradients are all-reduced once. lr, when given, is set on every parameter group first. Returns the
    mean micro-batch loss as a device tensor (no host sync). autocast: None for none (fp32)."""
    autocast = contextlib.nullcontext() if autocast is None else autocast
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    x, y = micro_batch(0)
    loss_sum = torch.zeros((), device=x.device)
    for micro in range(steps):
        last = micro == steps - 1
        with no_sync() if (no_sync is not None and not last) else contextlib.nullcontext():
            with autocast:
                # The logits are never bound to a name: they are freed as soon as the loss holds
                # what backward needs, not kept until the next micro-batch's forward returns.
                loss = model(x, y)[1]
                loss = loss / steps
            if not last:
                x, y = micro_batch(micro + 1)  # host work overlaps the queued GPU forward
            scaler.scale(loss).backward()
        loss_sum += loss.detach()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_((model if raw_model is None else raw_model).parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum


class Trainer:
    def __init__(self, cfg: TrainConfig, verbose: bool = True, overwrite: bool = False,
                 progress: bool = True) -> None:
        """`overwrite`: an earlier run in out_dir is moved aside instead of refused (see
        check_out_dir). It is an argument, not a config key: it says what to do with the folder,
        not how to train, so it is neither saved in checkpoints nor part of a grow stage's signature."""
        self.cfg = cfg
        move_earlier_run = check_out_dir(cfg, overwrite, int(os.environ.get("RANK", 0)))
        self.dist = init_distributed(cfg.device)
        self.rt: Runtime = pick_runtime(cfg.device, cfg.dtype, self.dist.local_rank if self.dist.enabled else None)
        if self.rt.device_type == "cpu":
            keep_freed_cpu_memory()  # no page faults for the big per-step tensors: see hardware.py
        self.verbose = verbose and self.dist.is_main
        # progress=False (train --quiet): no start summary and no per-iteration lines; evaluations,
        # warnings (run moved aside, CPU accumulation hint, resume LR) and errors are still printed.
        self.progress = progress
        self.out_dir = Path(cfg.out_dir)
        if cfg.gradient_accumulation_steps % self.dist.world_size:
            raise UserError(
                f"config key 'gradient_accumulation_steps' ({cfg.gradient_accumulation_steps}) must be a multiple of "
                f"the number of processes ({self.dist.world_size})"
            )
        self.grad_accum_per_rank = cfg.gradient_accumulation_steps // self.dist.world_size
        self.tokens_per_iter = cfg.gradient_accumulation_steps * cfg.batch_size * cfg.block_size

        self.data = open_dataset(cfg)
        self.data.check_block_size(cfg.block_size)
        self.vocab_size = self.data.vocab_size

        if self.rt.device_type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.autocast = (torch.autocast(device_type=self.rt.device_type, dtype=self.rt.torch_dtype)
                         if self.rt.dtype != "float32" else contextlib.nullcontext())

        self.iter_num = 0
        self.best_val_loss = float("inf")
        self.schedule_note: str | None = None  # what schedule_start = "resume" resolved to
        self.schedule_from_resume: int | None = None  # recorded in checkpoints (SCHEDULE_FROM_RESUME)
        self.resume_line: str | None = None
        # raw_model: the GPT; model: what runs the forward (compiled and/or DDP-wrapped raw_model).
        self.raw_model: GPT
        self.model: torch.nn.Module
        self.no_sync: Callable[[], contextlib.AbstractContextManager] | None = None  # DDP's, when wrapped
        try:
            resume_state = self._build_model()
            self.model.to(self.rt.device)
            self.scaler = torch.amp.GradScaler(self.rt.device_type, enabled=(self.rt.dtype == "float16"))
            self.optimizer = self.raw_model.configure_optimizer(
                cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), self.rt.device_type)
        except (RuntimeError, MemoryError) as e:
            if not is_out_of_memory(e):
                raise  # a real bug, keep its traceback
            raise UserError(
                f"out of memory while allocating the model (n_layer={cfg.n_layer}, n_embd={cfg.n_embd}) on "
                f"{self.rt.device}: lower n_layer or n_embd; batch_size={cfg.batch_size} and "
                f"block_size={cfg.block_size} set what each step needs on top"
            ) from None
        if resume_state is not None:
            self._restore_training_state(resume_state, self.out_dir / ckpt_io.CHECKPOINT)
            self.resume_line = self.resume_lr_line(resume_state["config"])
            # Dropout draws differ per rank, as in nanoGPT; the saved state is rank 0's.
            if self.dist.rank:
                torch.manual_seed(cfg.seed + self.dist.rank + self.iter_num)
        self.resumed = resume_state is not None
        del resume_state

        if cfg.compile:
            self.model = cast(torch.nn.Module, torch.compile(self.model))  # an OptimizedModule
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.dist.local_rank] if self.rt.device_type == "cuda" else None
            ddp = DDP(self.model, device_ids=ids)
            self.model, self.no_sync = ddp, ddp.no_sync
        # The figure MFU is measured against (hardware.py); bench/train_throughput.py reads .peak and .peak_source.
        self.peak_info = peak_flops(self.rt, cfg.peak_flops)
        self.peak, self.peak_source = self.peak_info.flops, self.peak_info.source
        self.moved_aside = move_aside(self.out_dir) if move_earlier_run else None

    # --- model construction ------------------------------------------------------------------

    def _model_config(self) -> GPTConfig:
        c = self.cfg
        return GPTConfig(block_size=c.block_size, vocab_size=padded_vocab_size(self.vocab_size), n_layer=c.n_layer,
                         n_head=c.n_head, n_embd=c.n_embd, dropout=c.dropout, bias=c.bias)

    def check_memory(self, n_layer: int, n_head: int, n_embd: int, block_size: int, bias: bool) -> None:
        """Refuse a model and batch whose training step cannot fit in the device's memory, before
        anything is allocated (growgpt.estimate's arithmetic: no tensor is made)."""
        from growgpt.estimate import format_bytes, vram_bytes

        c = self.cfg
        have, where = memory_bytes(self.rt)
        if have is None:
            return
        need = vram_bytes(n_layer, n_head, n_embd, block_size, self.vocab_size, c.batch_size, dtype=self.rt.dtype,
                          bias=bias, dropout=c.dropout, device=self.rt.device_type)
        # Processes of one machine share its RAM; each GPU has its own memory.
        sharing = 1 if self.rt.device_type == "cuda" else int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size))
        total = need["total_on_card"] * sharing
        if total <= have:
            return
        state = need["params"] + need["grads"] + need["adamw"]
        processes = f"{sharing} processes, each " if sharing > 1 else ""
        raise UserError(
            f"training needs an estimated {format_bytes(total)} of memory ({processes}weights, gradients and AdamW "
            f"state {format_bytes(state)} + activations and logits of a micro-batch "
            f"{format_bytes(need['total_on_card'] - state)}) but "
            f"{where} has {format_bytes(have)}: lower n_layer or n_embd (n_layer={n_layer}, n_embd={n_embd}), "
            f"batch_size={c.batch_size} (raising gradient_accumulation_steps keeps the tokens per step) or "
            f"block_size={block_size}")

    def _build_model(self) -> dict | None:
        """Create self.raw_model / self.model; return the checkpoint when resuming."""
        c = self.cfg
        if c.init_from in ("scratch", "resume"):  # the GPT-2 weights decide their shape: checked once loaded
            self.check_memory(c.n_layer, c.n_head, c.n_embd, c.block_size, c.bias)
        torch.manual_seed(c.seed)  # the same initial weights on every rank and in every run
        state = None
        if c.schedule_start == SCHEDULE_START_RESUME and c.init_from != "resume":
            raise UserError("config key 'schedule_start' = \"resume\" needs init_from = \"resume\"")
        if c.init_from == "scratch":
            model = GPT(self._model_config())
        elif c.init_from == "resume":
            path = self.out_dir / ckpt_io.CHECKPOINT
            if not path.is_file():
                raise UserError(f"init_from = 'resume' but {path} does not exist: "
                                "train with init_from = 'scratch' first")
            state = ckpt_io.load(path)
            if state.get("optimizer") is None:
                raise UserError(f"{path} holds weights only (no optimizer state): it cannot be resumed")
            ckpt_io.check_entries(state, path, ckpt_io.RESUME_ENTRIES)
            self._check_resume_compatible(state, path)
            model = ckpt_io.build_model(state, path)
            self.iter_num = state["iter_num"]
            self.best_val_loss = float(state["best_val_loss"])
            self._resolve_schedule_start(state)
        else:
            if self.data.tokenizer_spec.get("name") != "gpt2":
                raise UserError(f"init_from = {c.init_from!r} loads GPT-2 weights, but dataset {c.dataset} uses the "
                                f"{self.data.tokenizer_spec.get('name')!r} tokenizer: prepare it with --tokenizer gpt2")
            model = load_gpt2_weights(c.init_from, dropout=c.dropout)
            for key in ("n_layer", "n_head", "n_embd", "bias"):
                setattr(c, key, getattr(model.config, key))  # the weights decide the shape
            if c.block_size < model.config.block_size:
                model.crop_block_size(c.block_size)
            elif c.block_size > model.config.block_size:
                raise UserError(f"config key 'block_size' ({c.block_size}) exceeds the GPT-2 weights' context "
                                f"({model.config.block_size})")
            self.check_memory(c.n_layer, c.n_head, c.n_embd, c.block_size, c.bias)
        torch.manual_seed(c.seed + self.dist.rank + self.iter_num)  # dropout stream, per rank
        self.raw_model = model
        self.model = model
        if self.verbose:
            print(f"model: {model.num_params() / 1e6:.2f}M parameters (non-embedding), "
                  f"{model.config.n_layer} layers, {model.config.n_head} heads, {model.config.n_embd} wide, "
                  f"vocab {self.vocab_size} (padded {model.config.vocab_size})")
        return state

    def _resolve_schedule_start(self, state: dict) -> None:
        """schedule_start = "resume": the checkpoint's iteration, so warmup and decay start afresh here
        (lr_decay_iters counting from it). When the checkpoint was itself written by a run that resolved
        "resume", with the same learning_rate, data and schedule keys, this is that run resumed again:
        its schedule_start is kept, so an interrupted run does not warm up a second time."""
        saved = state["config"]
        resolved_before = state.get(SCHEDULE_FROM_RESUME)
        self.schedule_note = None
        if self.cfg.schedule_start != SCHEDULE_START_RESUME:
            self.schedule_from_resume = (resolved_before if resolved_before == self.cfg.schedule_start else None)
            return
        same = all(_same_setting(k, saved.get(k), getattr(self.cfg, k))
                   for k in ("learning_rate", *DATA_KEYS, *SCHEDULE_KEYS) if k != "schedule_start")
        if isinstance(resolved_before, int) and saved.get("schedule_start") == resolved_before and same:
            self.cfg.schedule_start = resolved_before
            self.schedule_note = (f"schedule_start = \"resume\": continuing the fresh schedule this run started at "
                                  f"iter {resolved_before}")
        else:
            self.cfg.schedule_start = self.iter_num
            self.schedule_note = f"schedule_start = \"resume\": a fresh warmup and decay from iter {self.iter_num}"
        self.schedule_from_resume = self.cfg.schedule_start

    def resume_lr_line(self, saved: dict) -> str | None:
        """One line when learning_rate, the data or a schedule key differs from the checkpoint's config:
        the LR of the next step and, when the schedule does not start at this iteration, how to get a
        fresh one. None when nothing differs."""
        c = self.cfg
        changed = [k for k in ("learning_rate", *DATA_KEYS, *SCHEDULE_KEYS)
                   if k in saved and not _same_setting(k, saved[k], getattr(c, k))
                   and not (k == "schedule_start" and self.schedule_note is not None)]  # the note says it
        if not changed and self.schedule_note is None:
            return None
        next_lr = lr_at(self.iter_num, c)
        what = ", ".join(f"{k} {saved[k]!r} -> {getattr(c, k)!r}" for k in changed)
        head = f"resuming at iter {self.iter_num}" + (f" with {what}" if what else "")
        if not c.decay_lr:
            return f"{head}: LR {next_lr:.2e} at the next step (decay_lr = false: constant)"
        start = c.schedule_start
        assert isinstance(start, int), "schedule_start = 'resume' is resolved by _restore_training_state"
        step = self.iter_num - start
        if c.schedule == "constant":
            horizon = "then constant"
        else:
            horizon = f"min_lr {c.min_lr:.2e} at iter {start + c.lr_decay_iters:,}"
        shape = (f"{c.schedule} schedule from schedule_start = {start:,} (warmup {c.warmup_iters:,} "
                 f"iters to {c.learning_rate:.2e}, {horizon}; max_iters {c.max_iters:,})")
        if self.schedule_note is not None:
            return f"{head}: {self.schedule_note}; LR {next_lr:.2e} at the next step, {shape}"
        if step == 0:
            return f"{head}: LR {next_lr:.2e} at the next step, a fresh {shape}"
        return (f"{head}: LR {next_lr:.2e} at the next step, {step:,} iters into the {shape}. For a fresh warmup "
                f"and decay from iter {self.iter_num}, add --set schedule_start=resume (lr_decay_iters then counts "
                "from there)")

    def _check_resume_compatible(self, state: dict, path: Path) -> None:
        if not same_tokenizer(state["tokenizer"], self.data.tokenizer_spec):
            raise UserError(
                f"checkpoint {path} was trained with tokenizer {state['tokenizer'].get('fingerprint')}, but dataset "
                f"{self.cfg.dataset} uses {self.data.tokenizer_spec.get('fingerprint')}: use a dataset prepared with "
                "the same tokenizer"
            )
        saved = state["config"]
        for key in MODEL_SHAPE_KEYS:
            if key not in saved:
                raise UserError(f"checkpoint {path}: its 'config' lacks '{key}'")
            if getattr(self.cfg, key) != saved[key]:
                raise UserError(f"config key '{key}' = {getattr(self.cfg, key)!r} but checkpoint {path} has "
                                f"{saved[key]!r}: resuming keeps the model's shape; set {key} = {saved[key]!r}")
        # The model is built from model_args: they must agree with the config checked above and with the
        # dataset's vocabulary (token ids beyond the embedding would fail in the middle of a step).
        args = ckpt_io.model_config(state["model_args"], path).to_dict()
        expected = {**{key: getattr(self.cfg, key) for key in MODEL_SHAPE_KEYS},
                    "vocab_size": padded_vocab_size(self.vocab_size)}
        for key, value in expected.items():
            if args[key] != value:
                raise UserError(f"checkpoint {path}: its model_args have {key} = {args[key]!r} where its config and "
                                f"the dataset give {value!r}: it is not a consistent growgpt checkpoint")

    def _restore_training_state(self, state: dict, path: Path) -> None:
        """Optimizer, grad-scaler and RNG states from a checkpoint, each checked to fit this model."""
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, RuntimeError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"checkpoint {path}: its optimizer state does not fit its model ({reason})") from None
        # load_state_dict does not compare the AdamW moments with the parameters; a step would.
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                for name, value in self.optimizer.state.get(param, {}).items():
                    if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                        raise UserError(f"checkpoint {path}: its optimizer state '{name}' has shape "
                                        f"{tuple(value.shape)} for a parameter of shape {tuple(param.shape)}")
        ckpt_io.restore_rng_state(state["rng"], path)

    # --- evaluation ---------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> EvalLosses:
        """Mean loss over eval_iters fixed batches per split, the batches divided across ranks, under
        "train" and "val"; bits per byte of the same batches under "train_bpb" and "val_bpb" (None
        when the tokenizer has no per-token byte table: see growgpt.token_bytes)."""
        model = self.raw_model if not self.cfg.compile else self._compiled_module()
        model.eval()
        out: dict[str, tuple[float, float | None]] = {}  # split -> (mean loss, bits per byte)
        for split in ("train", "val"):
            data = self.data.split(split)
            # loss sum, batch count, nats over all targets, UTF-8 bytes of the targets (sums over ranks)
            total = torch.zeros(4, dtype=torch.float64, device=self.rt.device)
            for i in range(self.dist.rank, self.cfg.eval_iters, self.dist.world_size):
                x, y = data.batch(eval_generator(self.cfg.seed, split, i), self.cfg.batch_size, self.cfg.block_size)
                target_bytes = self.data.target_bytes(y)  # on the host, before the copy
                x, y = self._to_device(x, y)
                with self.autocast:
                    _, loss = model(x, y)
                total[0] += loss.double()
                total[1] += 1
                total[2] += loss.double() * y.numel()  # the loss is the mean over every target
                total[3] += target_bytes or 0
            _all_reduce_sum(total, self.dist)
            nats, n_bytes = total[2].item(), total[3].item()
            out[split] = ((total[0] / total[1]).item(),
                          bits_per_byte(nats, n_bytes if self.data.byte_lengths is not None else None))
        model.train()
        return EvalLosses(train=out["train"][0], train_bpb=out["train"][1], val=out["val"][0], val_bpb=out["val"][1])

    def _compiled_module(self):
        return self.model.module if self.dist.enabled else self.model

    # --- one optimizer step ---------------------------------------------------------------------

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rt.device_type == "cuda":
            return (x.pin_memory().to(self.rt.device, non_blocking=True),
                    y.pin_memory().to(self.rt.device, non_blocking=True))
        return x.to(self.rt.device), y.to(self.rt.device)

    def _micro_batch(self, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        global_micro = micro * self.dist.world_size + self.dist.rank
        gen = micro_batch_generator(self.cfg.seed, "train", self.iter_num, global_micro)
        return self._to_device(*self.data.train.batch(gen, self.cfg.batch_size, self.cfg.block_size))

    def train_step(self, lr: float) -> torch.Tensor:
        """Forward/backward over this rank's micro-batches and one AdamW step at `lr` (optimizer_step).
        Returns the mean micro-batch loss as a device tensor (no host sync)."""
        return optimizer_step(self.model, self.optimizer, self.scaler, self._micro_batch, self.grad_accum_per_rank,
                              autocast=self.autocast, grad_clip=self.cfg.grad_clip, raw_model=self.raw_model,
                              no_sync=self.no_sync, lr=lr)

    # --- checkpoints ------------------------------------------------------------------------------

    def _checkpoint(self, with_optimizer: bool = True) -> dict:
        return {
            "format": "growgpt-checkpoint",
            "version": 1,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict() if with_optimizer else None,
            "scaler": self.scaler.state_dict() if (with_optimizer and self.scaler.is_enabled()) else None,
            "model_args": self.raw_model.config.to_dict(),
            "iter_num": self.iter_num,
            "best_val_loss": self.best_val_loss,
            "config": self.cfg.to_dict(),
            "tokenizer": self.data.tokenizer_spec,
            "vocab_size": self.vocab_size,
            "dataset": str(self.data.data_dir),
            "rng": ckpt_io.capture_rng_state() if with_optimizer else None,
            # Batches are a pure function of (seed, iteration, micro-step): the sampler's position
            # is the iteration to run next.
            "sampler": {"scheme": "seeded-by-iteration", "seed": self.cfg.seed, "next_iter": self.iter_num},
            **({SCHEDULE_FROM_RESUME: self.schedule_from_resume} if self.schedule_from_resume is not None else {}),
        }

    def save(self, improved: bool) -> None:
        if not self.dist.is_main:
            return
        if self.cfg.always_save_checkpoint or improved:
            ckpt_io.atomic_save(self._checkpoint(), self.out_dir / ckpt_io.CHECKPOINT)
        if improved:
            ckpt_io.atomic_save(self._checkpoint(with_optimizer=False), self.out_dir / ckpt_io.BEST)

    def export_weights(self) -> None:
        """model.safetensors: the best weights (else the last), for sharing and sampling."""
        if not self.dist.is_main or self.cfg.eval_only:
            return
        best = self.out_dir / ckpt_io.BEST
        state = ckpt_io.load(best) if best.is_file() else self._checkpoint(with_optimizer=False)
        ckpt_io.export_safetensors(state, self.out_dir / ckpt_io.SAFETENSORS)

    # --- the loop ---------------------------------------------------------------------------------

    def _diverged(self, nonfinite: torch.Tensor) -> bool:
        flag = nonfinite.float().reshape(1)
        return bool(_all_reduce_sum(flag, self.dist).item() > 0)

    def _stop_diverged(self, where: str) -> None:
        last = self.out_dir / ckpt_io.CHECKPOINT
        kept = f"the last good checkpoint {last} is kept" if last.is_file() else "no checkpoint was written"
        raise UserError(f"loss became NaN/inf {where}; training stopped and {kept}. "
                        "Lower learning_rate, raise warmup_iters, or check the data")

    def run(self) -> dict:
        cfg = self.cfg
        if self.dist.is_main:
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UserError(f"cannot create the run folder {self.out_dir}: {e.strerror or e}") from None
            if self.resumed:
                truncate_metrics(self.out_dir, self.iter_num)
        logger = MetricsLogger(self.out_dir, cfg.to_dict(), enabled=self.dist.is_main)
        if self.verbose and self.moved_aside is not None:
            print(f"moved the earlier run in {self.out_dir} aside to {self.moved_aside}")
        if self.verbose and self.progress:
            peak = f"{format_flops(self.peak)} ({self.peak_source})" if self.peak else self.peak_source
            start = f"resuming at iter {self.iter_num}" if self.resumed else f"init {cfg.init_from}"
            print(f"device {self.rt.device} ({self.rt.dtype}), {self.dist.world_size} process(es), "
                  f"peak {peak}; {start}")
            split = (f", {self.grad_accum_per_rank} micro-batches on each of {self.dist.world_size} processes"
                     if self.dist.enabled else "")
            print(f"tokens per iteration: {self.tokens_per_iter:,} = batch_size {cfg.batch_size} x block_size "
                  f"{cfg.block_size} x gradient_accumulation_steps {cfg.gradient_accumulation_steps}{split}; "
                  f"{cfg.max_iters:,} iters = {self.tokens_per_iter * cfg.max_iters:,} tokens")
        if self.verbose:
            hint = cpu_accum_hint(cfg, self.rt.device_type, self.grad_accum_per_rank)
            if hint:
                print(hint)
            if self.resume_line:
                print(self.resume_line)
        try:
            return self._loop(logger)
        except (RuntimeError, MemoryError) as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
            if not is_out_of_memory(e):
                raise  # a real bug, keep its traceback
            raise UserError(
                f"out of memory at batch_size={cfg.batch_size}, block_size={cfg.block_size}: lower batch_size "
                "(and raise gradient_accumulation_steps to keep the tokens per step) or block_size, "
                f"or the model (n_layer={cfg.n_layer}, n_embd={cfg.n_embd})"
            ) from None
        finally:
            logger.close()

    def _loop(self, logger: MetricsLogger) -> dict:
        cfg = self.cfg
        flops_per_iter = self.raw_model.flops_per_token() * self.tokens_per_iter
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.rt.device)
        losses: EvalLosses | dict[str, float] = {}  # empty until the first evaluation
        skip_eval_at = self.iter_num if self.resumed else None  # that evaluation is already in the log
        t_last, iters_since_log = time.perf_counter(), 0
        # For the progress: wall time since the loop began, training-step time and steps, evaluation
        # (and checkpoint) time and count, all in this process (a resumed run measures its own steps).
        t_begin, train_seconds, train_iters, eval_seconds, evals = time.perf_counter(), 0.0, 0, 0.0, 0
        while True:
            at_end = self.iter_num >= cfg.max_iters
            if (self.iter_num % cfg.eval_interval == 0 or at_end or cfg.eval_only) and self.iter_num != skip_eval_at:
                t_eval = time.perf_counter()
                losses = self.evaluate()
                if not all(math.isfinite(losses[s]) for s in ("train", "val")) or self._diverged(nonfinite):
                    self._stop_diverged(f"by iter {self.iter_num}")
                improved = losses["val"] < self.best_val_loss
                self.best_val_loss = min(self.best_val_loss, losses["val"])
                logger.log("eval", self.iter_num, train_loss=losses["train"], val_loss=losses["val"],
                           train_ppl=perplexity(losses["train"]), val_ppl=perplexity(losses["val"]),
                           train_bpb=losses["train_bpb"], val_bpb=losses["val_bpb"], lr=lr_at(self.iter_num, cfg))
                if self.verbose:
                    bpb = f", {losses['val_bpb']:.4f} bpb" if losses["val_bpb"] is not None else ", bpb n/a"
                    print(f"eval iter {self.iter_num}: train loss {losses['train']:.4f} "
                          f"(ppl {perplexity(losses['train']):.2f}), "
                          f"val loss {losses['val']:.4f} (ppl {perplexity(losses['val']):.2f}{bpb})")
                if cfg.eval_only:
                    break
                if self.iter_num > 0:
                    self.save(improved)
                # Evaluation time is not training time: the steps since the last log line are measured
                # from here, and the time they ran before the evaluation goes to the mean step time.
                now = time.perf_counter()
                train_seconds += t_eval - t_last
                train_iters += iters_since_log
                eval_seconds, evals = eval_seconds + now - t_eval, evals + 1
                t_last, iters_since_log = now, 0
            if at_end:
                break

            lr = lr_at(self.iter_num, cfg)
            loss = self.train_step(lr)
            nonfinite |= ~torch.isfinite(loss)
            self.iter_num += 1
            iters_since_log += 1
            if self.iter_num % cfg.log_interval == 0 or self.iter_num == cfg.max_iters:
                loss_value = loss.item()  # the only host sync per log interval
                if self._diverged(nonfinite):
                    self._stop_diverged(f"between iter {self.iter_num - iters_since_log} and {self.iter_num}")
                now = time.perf_counter()
                dt = (now - t_last) / iters_since_log
                train_seconds += now - t_last
                train_iters += iters_since_log
                t_last, iters_since_log = now, 0
                tokens_per_s = self.tokens_per_iter / dt
                # MFU over this log interval's training steps (evaluation and checkpoint time excluded,
                # see t_last), per device as the peak is one device's. Above 100 % the peak is wrong:
                # mfu is then None (null in metrics.jsonl) and a cached CPU peak is raised for next time.
                achieved_flops = flops_per_iter / dt / self.dist.world_size
                mfu = self.peak_info.mfu(achieved_flops)
                self.peak_info.record_rate(achieved_flops)
                logger.log("train", self.iter_num - 1, loss=loss_value, lr=lr, ms_per_iter=dt * 1000,
                           tokens_per_s=tokens_per_s, mfu=mfu)
                if self.verbose and self.progress:
                    mfu_text = self.peak_info.console_text(achieved_flops)
                    # The ETA: the mean step time so far times the steps left, plus the evaluations
                    # still to come at the mean evaluation time (none measured yet: not counted).
                    left = cfg.max_iters - self.iter_num
                    eta = (train_seconds / train_iters * left
                           + (eval_seconds / evals * evals_after(self.iter_num, cfg) if evals else 0.0))
                    done = 100 * self.iter_num / cfg.max_iters
                    progress = (f"{self.iter_num:,}/{cfg.max_iters:,} iters ({done:.0f}%), "
                                f"elapsed {format_duration(now - t_begin)}, ETA {format_duration(eta)}")
                    print(f"iter {self.iter_num - 1}: loss {loss_value:.4f}, lr {lr:.2e}, {dt * 1000:.1f} ms/iter, "
                          f"{tokens_per_s:,.0f} tok/s{mfu_text} | {progress}")
        self.export_weights()
        return {"iter_num": self.iter_num, "best_val_loss": self.best_val_loss, "last_eval": losses,
                "out_dir": str(self.out_dir)}


def train(cfg: TrainConfig, verbose: bool = True, overwrite: bool = False, progress: bool = True) -> dict:
    """Train `cfg` to max_iters; `overwrite` moves an earlier run in out_dir aside (see Trainer);
    `progress=False` keeps only evaluations, warnings and errors on the console."""
    trainer = Trainer(cfg, verbose=verbose, overwrite=overwrite, progress=progress)
    try:
        return trainer.run()
    finally:
        if trainer.dist.enabled:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
