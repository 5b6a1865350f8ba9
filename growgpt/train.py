"""Training: nanoGPT's loop, made to resume exactly and to fail loudly.

One process or many (torchrun sets RANK/LOCAL_RANK/WORLD_SIZE: DDP over NCCL on GPU, gloo on CPU;
gradient accumulation steps are divided across ranks as in nanoGPT). Per iteration: the global
micro-batches of that iteration (see `data`), AdamW with linear warmup + cosine decay, gradient
clipping, bf16 autocast on CUDA (fp16 + GradScaler where bf16 is missing), fp32 on CPU.

Exact resume: a checkpoint holds model, optimizer (and grad-scaler) state, the iteration, the best
val loss and every RNG state; batches depend only on (seed, iteration, micro-step), so a run stopped
at iteration k and resumed computes the same numbers as one that never stopped (bitwise on CPU).

What can go wrong is caught where it happens: NaN/inf loss stops the run before a bad checkpoint is
written, out-of-memory names the knobs to turn, a dataset whose tokenizer differs from the
checkpoint's is refused.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from growgpt import checkpoint as ckpt_io
from growgpt.config import TrainConfig
from growgpt.data import eval_generator, micro_batch_generator, open_dataset
from growgpt.errors import UserError
from growgpt.hardware import Runtime, keep_freed_cpu_memory, peak_flops, pick_runtime
from growgpt.metrics import MetricsLogger, truncate_metrics
from growgpt.model import GPT, GPTConfig, load_gpt2_weights, padded_vocab_size
from growgpt.tokenizer import same_tokenizer

MODEL_SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias")


def lr_at(it: int, cfg: TrainConfig) -> float:
    """Linear warmup to learning_rate over warmup_iters, cosine decay to min_lr at lr_decay_iters,
    both counted from schedule_start (0 for a plain run; a grow stage's first iteration otherwise)."""
    if not cfg.decay_lr:
        return cfg.learning_rate
    step = it - cfg.schedule_start
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    if step >= cfg.lr_decay_iters:
        return cfg.min_lr
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


def _all_reduce_sum(values: torch.Tensor, dist_info: Distributed) -> torch.Tensor:
    if dist_info.enabled:
        import torch.distributed as dist

        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


class Trainer:
    def __init__(self, cfg: TrainConfig, verbose: bool = True) -> None:
        self.cfg = cfg
        self.dist = init_distributed(cfg.device)
        self.rt: Runtime = pick_runtime(cfg.device, cfg.dtype, self.dist.local_rank if self.dist.enabled else None)
        if self.rt.device_type == "cpu":
            keep_freed_cpu_memory()  # no page faults for the big per-step tensors: see hardware.py
        self.verbose = verbose and self.dist.is_main
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
        resume_state = self._build_model()
        self.model.to(self.rt.device)
        self.scaler = torch.amp.GradScaler(self.rt.device_type, enabled=(self.rt.dtype == "float16"))
        self.optimizer = self.raw_model.configure_optimizer(
            cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), self.rt.device_type)
        if resume_state is not None:
            self.optimizer.load_state_dict(resume_state["optimizer"])
            if resume_state.get("scaler"):
                self.scaler.load_state_dict(resume_state["scaler"])
            ckpt_io.restore_rng_state(resume_state["rng"])
            # Dropout draws differ per rank, as in nanoGPT; the saved state is rank 0's.
            if self.dist.rank:
                torch.manual_seed(cfg.seed + self.dist.rank + self.iter_num)
        self.resumed = resume_state is not None
        del resume_state

        if cfg.compile:
            self.model = torch.compile(self.model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.dist.local_rank] if self.rt.device_type == "cuda" else None
            self.model = DDP(self.model, device_ids=ids)
        self.peak, self.peak_source = peak_flops(self.rt, cfg.peak_flops)

    # --- model construction ------------------------------------------------------------------

    def _model_config(self) -> GPTConfig:
        c = self.cfg
        return GPTConfig(block_size=c.block_size, vocab_size=padded_vocab_size(self.vocab_size), n_layer=c.n_layer,
                         n_head=c.n_head, n_embd=c.n_embd, dropout=c.dropout, bias=c.bias)

    def _build_model(self) -> dict | None:
        """Create self.raw_model / self.model; return the checkpoint when resuming."""
        c = self.cfg
        torch.manual_seed(c.seed)  # the same initial weights on every rank and in every run
        state = None
        if c.init_from == "scratch":
            model = GPT(self._model_config())
        elif c.init_from == "resume":
            path = self.out_dir / ckpt_io.CHECKPOINT
            if not path.is_file():
                raise UserError(f"init_from = 'resume' but {path} does not exist: train with init_from = 'scratch' first")
            state = ckpt_io.load(path)
            if state.get("optimizer") is None:
                raise UserError(f"{path} holds weights only (no optimizer state): it cannot be resumed")
            self._check_resume_compatible(state, path)
            model = GPT(GPTConfig(**state["model_args"]))
            model.load_state_dict(state["model"])
            self.iter_num = int(state["iter_num"])
            self.best_val_loss = float(state["best_val_loss"])
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
        torch.manual_seed(c.seed + self.dist.rank + self.iter_num)  # dropout stream, per rank
        self.raw_model = model
        self.model = model
        if self.verbose:
            print(f"model: {model.num_params() / 1e6:.2f}M parameters (non-embedding), "
                  f"{model.config.n_layer} layers, {model.config.n_head} heads, {model.config.n_embd} wide, "
                  f"vocab {self.vocab_size} (padded {model.config.vocab_size})")
        return state

    def _check_resume_compatible(self, state: dict, path: Path) -> None:
        if not same_tokenizer(state["tokenizer"], self.data.tokenizer_spec):
            raise UserError(
                f"checkpoint {path} was trained with tokenizer {state['tokenizer'].get('fingerprint')}, but dataset "
                f"{self.cfg.dataset} uses {self.data.tokenizer_spec.get('fingerprint')}: use a dataset prepared with "
                "the same tokenizer"
            )
        saved = state["config"]
        for key in MODEL_SHAPE_KEYS:
            if getattr(self.cfg, key) != saved[key]:
                raise UserError(f"config key '{key}' = {getattr(self.cfg, key)!r} but checkpoint {path} has "
                                f"{saved[key]!r}: resuming keeps the model's shape; set {key} = {saved[key]!r}")

    # --- evaluation ---------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss over eval_iters fixed batches per split, the batches divided across ranks."""
        model = self.raw_model if not self.cfg.compile else self._compiled_module()
        model.eval()
        out = {}
        for split in ("train", "val"):
            data = self.data.split(split)
            total = torch.zeros(2, dtype=torch.float64, device=self.rt.device)  # loss sum, count
            for i in range(self.dist.rank, self.cfg.eval_iters, self.dist.world_size):
                x, y = data.batch(eval_generator(self.cfg.seed, split, i), self.cfg.batch_size, self.cfg.block_size)
                x, y = self._to_device(x, y)
                with self.autocast:
                    _, loss = model(x, y)
                total[0] += loss.double()
                total[1] += 1
            _all_reduce_sum(total, self.dist)
            out[split] = (total[0] / total[1]).item()
        model.train()
        return out

    def _compiled_module(self):
        return self.model.module if self.dist.enabled else self.model

    # --- one optimizer step ---------------------------------------------------------------------

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rt.device_type == "cuda":
            return x.pin_memory().to(self.rt.device, non_blocking=True), y.pin_memory().to(self.rt.device, non_blocking=True)
        return x.to(self.rt.device), y.to(self.rt.device)

    def _micro_batch(self, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        global_micro = micro * self.dist.world_size + self.dist.rank
        gen = micro_batch_generator(self.cfg.seed, "train", self.iter_num, global_micro)
        return self._to_device(*self.data.train.batch(gen, self.cfg.batch_size, self.cfg.block_size))

    def train_step(self, lr: float) -> torch.Tensor:
        """Forward/backward over this rank's micro-batches and one AdamW step. Returns the mean
        micro-batch loss as a device tensor (no host sync)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=self.rt.device)
        x, y = self._micro_batch(0)
        for micro in range(self.grad_accum_per_rank):
            sync = micro == self.grad_accum_per_rank - 1
            no_sync = self.model.no_sync() if (self.dist.enabled and not sync) else contextlib.nullcontext()
            with no_sync:
                with self.autocast:
                    # The logits are never bound to a name: they are freed as soon as the loss holds
                    # what backward needs, not kept until the next micro-batch's forward returns.
                    loss = self.model(x, y)[1]
                    loss = loss / self.grad_accum_per_rank
                if micro + 1 < self.grad_accum_per_rank:
                    x, y = self._micro_batch(micro + 1)  # host work overlaps the queued GPU forward
                self.scaler.scale(loss).backward()
            loss_sum += loss.detach()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum

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
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.resumed:
                truncate_metrics(self.out_dir, self.iter_num)
        logger = MetricsLogger(self.out_dir, cfg.to_dict(), enabled=self.dist.is_main)
        if self.verbose:
            peak = f"{self.peak / 1e12:.2f} TFLOP/s ({self.peak_source})" if self.peak else self.peak_source
            start = f"resuming at iter {self.iter_num}" if self.resumed else f"init {cfg.init_from}"
            print(f"device {self.rt.device} ({self.rt.dtype}), {self.dist.world_size} process(es), "
                  f"{self.tokens_per_iter:,} tokens/iter, peak {peak}; {start}")
        try:
            return self._loop(logger)
        except (torch.cuda.OutOfMemoryError, RuntimeError) as e:
            if not isinstance(e, torch.cuda.OutOfMemoryError) and "out of memory" not in str(e):
                raise  # a real bug, keep its traceback
            raise UserError(
                f"out of memory at batch_size={cfg.batch_size}, block_size={cfg.block_size}: lower batch_size "
                "(and raise gradient_accumulation_steps to keep the tokens per step) or block_size"
            ) from None
        finally:
            logger.close()

    def _loop(self, logger: MetricsLogger) -> dict:
        cfg = self.cfg
        flops_per_iter = self.raw_model.flops_per_token() * self.tokens_per_iter
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.rt.device)
        losses = {}
        skip_eval_at = self.iter_num if self.resumed else None  # that evaluation is already in the log
        t_last, iters_since_log, smoothed_mfu = time.perf_counter(), 0, None
        while True:
            at_end = self.iter_num >= cfg.max_iters
            if (self.iter_num % cfg.eval_interval == 0 or at_end or cfg.eval_only) and self.iter_num != skip_eval_at:
                losses = self.evaluate()
                if not all(math.isfinite(v) for v in losses.values()) or self._diverged(nonfinite):
                    self._stop_diverged(f"by iter {self.iter_num}")
                improved = losses["val"] < self.best_val_loss
                self.best_val_loss = min(self.best_val_loss, losses["val"])
                logger.log("eval", self.iter_num, train_loss=losses["train"], val_loss=losses["val"],
                           train_ppl=math.exp(min(losses["train"], 50)), val_ppl=math.exp(min(losses["val"], 50)),
                           lr=lr_at(self.iter_num, cfg))
                if self.verbose:
                    print(f"eval iter {self.iter_num}: train loss {losses['train']:.4f} (ppl {math.exp(min(losses['train'], 50)):.2f}), "
                          f"val loss {losses['val']:.4f} (ppl {math.exp(min(losses['val'], 50)):.2f})")
                if cfg.eval_only:
                    break
                if self.iter_num > 0:
                    self.save(improved)
                t_last, iters_since_log = time.perf_counter(), 0  # evaluation time is not training time
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
                t_last, iters_since_log = now, 0
                tokens_per_s = self.tokens_per_iter / dt
                mfu = flops_per_iter / dt / (self.peak * self.dist.world_size) if self.peak else None
                if mfu is not None:
                    smoothed_mfu = mfu if smoothed_mfu is None else 0.9 * smoothed_mfu + 0.1 * mfu
                logger.log("train", self.iter_num - 1, loss=loss_value, lr=lr, ms_per_iter=dt * 1000,
                           tokens_per_s=tokens_per_s, mfu=mfu)
                if self.verbose:
                    mfu_text = f", mfu {100 * mfu:.1f}%" if mfu is not None else ""
                    print(f"iter {self.iter_num - 1}: loss {loss_value:.4f}, lr {lr:.2e}, {dt * 1000:.1f} ms/iter, "
                          f"{tokens_per_s:,.0f} tok/s{mfu_text}")
        self.export_weights()
        return {"iter_num": self.iter_num, "best_val_loss": self.best_val_loss, "last_eval": losses,
                "out_dir": str(self.out_dir)}


def train(cfg: TrainConfig, verbose: bool = True) -> dict:
    trainer = Trainer(cfg, verbose=verbose)
    try:
        return trainer.run()
    finally:
        if trainer.dist.enabled:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
