"""Training: loss falls, resume is exact, checkpoints survive crashes, bad runs stop cleanly."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from growgpt import checkpoint as ckpt_io
from growgpt.config import load_config
from growgpt.errors import UserError
from growgpt.metrics import read_metrics
from growgpt.train import Trainer, lr_at, train


def _run(settings: dict) -> dict:
    return train(load_config(base=settings), verbose=False)


def test_loss_falls_on_real_text(tiny_settings):
    result = _run(tiny_settings(max_iters=60))
    evals = [r for r in read_metrics(result["out_dir"]) if r["kind"] == "eval"]
    assert [r["iter"] for r in evals] == [0, 20, 40, 60]
    # Char-level starts near ln(vocab) ~ 4.6; a couple of dozen steps learn the character statistics.
    assert evals[0]["val_loss"] > 4.0
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 1.2
    assert math.isclose(evals[-1]["val_ppl"], math.exp(evals[-1]["val_loss"]), rel_tol=1e-9)
    trains = [r for r in read_metrics(result["out_dir"]) if r["kind"] == "train"]
    assert len(trains) == 60 and all(r["tokens_per_s"] > 0 for r in trains)


def test_interrupted_and_resumed_run_equals_uninterrupted(tiny_settings, tmp_path):
    # dropout > 0 makes the result depend on the restored RNG state, not only on the weights.
    common = dict(max_iters=30, lr_decay_iters=30, eval_interval=10, dropout=0.1)
    full = _run(tiny_settings(out_dir=str(tmp_path / "full"), **common))
    _run(tiny_settings(out_dir=str(tmp_path / "split"), **dict(common, max_iters=17)))
    resumed = _run(tiny_settings(out_dir=str(tmp_path / "split"), init_from="resume", **common))

    full_log, split_log = read_metrics(full["out_dir"]), read_metrics(resumed["out_dir"])

    def loss(log):
        return [(r["iter"], r["loss"]) for r in log if r["kind"] == "train"]

    def evals(log):
        return [(r["iter"], r["val_loss"], r["train_loss"]) for r in log if r["kind"] == "eval"]

    assert loss(split_log) == loss(full_log)  # bitwise: the same floats, step by step
    assert [e for e in evals(split_log) if e[0] != 17] == evals(full_log)
    a = ckpt_io.load(tmp_path / "full" / "ckpt.pt")["model"]
    b = ckpt_io.load(tmp_path / "split" / "ckpt.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_restores_optimizer_and_iteration(tiny_settings):
    _run(tiny_settings(max_iters=10, eval_interval=5))
    cfg = load_config(base=tiny_settings(max_iters=20, eval_interval=5, init_from="resume"))
    trainer = Trainer(cfg, verbose=False)
    assert trainer.iter_num == 10
    state = trainer.optimizer.state_dict()["state"]
    assert state and all(int(s["step"]) == 10 for s in state.values())


def test_killed_checkpoint_write_leaves_previous_loadable(tmp_path):
    path = tmp_path / "ckpt.pt"
    ckpt_io.atomic_save({"model": {"w": torch.ones(3)}, "iter_num": 1}, path)
    # A second save is killed (SIGKILL, no cleanup possible) after writing part of the file.
    script = textwrap.dedent(f"""
        import os, signal, torch
        from growgpt import checkpoint as ckpt_io
        real_save = torch.save
        def dying_save(obj, f):
            f.write(b"PK\\x03\\x04 half a zip file")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = dying_save
        ckpt_io.atomic_save({{"model": {{"w": torch.zeros(3)}}, "iter_num": 2}}, {str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert list(tmp_path.glob("ckpt.pt.tmp-*")), "the half-written temp file should be there"
    loaded = ckpt_io.load(path)
    assert loaded["iter_num"] == 1 and torch.equal(loaded["model"]["w"], torch.ones(3))
    ckpt_io.atomic_save({"model": {"w": torch.zeros(3)}, "iter_num": 3}, path)
    assert not list(tmp_path.glob("ckpt.pt.tmp-*")), "the next save removes stale temp files"


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    ckpt_io.atomic_save({"model": {"w": torch.ones(1000)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"ckpt.pt is corrupt or truncated"):
        ckpt_io.load(path)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_settings):
    _run(tiny_settings(max_iters=10, eval_interval=10))
    run_dir = tiny_settings()["out_dir"]
    good = ckpt_io.load(os.path.join(run_dir, "ckpt.pt"))
    with pytest.raises(UserError, match=r"NaN/inf .*last good checkpoint .*ckpt.pt is kept"):
        _run(tiny_settings(max_iters=40, eval_interval=10, init_from="resume", learning_rate=1e30,
                           warmup_iters=0, grad_clip=0.0, decay_lr=False))
    after = ckpt_io.load(os.path.join(run_dir, "ckpt.pt"))
    assert after["iter_num"] == good["iter_num"] == 10
    assert all(torch.equal(after["model"][k], good["model"][k]) for k in good["model"])


def test_out_of_memory_names_the_knobs(tiny_settings, monkeypatch):
    trainer = Trainer(load_config(base=tiny_settings(max_iters=5)), verbose=False)

    def oom(lr):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "train_step", oom)
    message = r"out of memory at batch_size=8, block_size=32: lower batch_size .*gradient_accumulation_steps"
    with pytest.raises(UserError, match=message):
        trainer.run()


def test_block_size_larger_than_data(tiny_settings):
    with pytest.raises(UserError, match=r"'block_size' \(10000000\) is larger than the data"):
        Trainer(load_config(base=tiny_settings(block_size=10_000_000)), verbose=False)


def test_resume_with_other_tokenizer_is_refused(tiny_settings, gpt2_data):
    _run(tiny_settings(max_iters=5, eval_interval=5))
    with pytest.raises(UserError, match=r"trained with tokenizer char-.*uses gpt2-r50k"):
        Trainer(load_config(base=tiny_settings(max_iters=10, init_from="resume", dataset=str(gpt2_data))),
                verbose=False)


def test_resume_with_other_model_shape_is_refused(tiny_settings):
    _run(tiny_settings(max_iters=5, eval_interval=5))
    with pytest.raises(UserError, match=r"config key 'n_layer' = 3 but checkpoint .* has 2"):
        Trainer(load_config(base=tiny_settings(max_iters=10, init_from="resume", n_layer=3)), verbose=False)


def test_resume_without_checkpoint(tiny_settings):
    with pytest.raises(UserError, match=r"init_from = 'resume' but .*ckpt.pt does not exist"):
        Trainer(load_config(base=tiny_settings(init_from="resume")), verbose=False)


def test_best_checkpoint_holds_weights_only(tiny_settings):
    result = _run(tiny_settings(max_iters=20, eval_interval=10))
    best = ckpt_io.load(os.path.join(result["out_dir"], "best.pt"))
    assert best["optimizer"] is None and best["iter_num"] == 20
    assert best["best_val_loss"] == pytest.approx(result["best_val_loss"])


def test_lr_schedule_warmup_then_cosine():
    cfg = load_config(base=dict(dataset="x", learning_rate=1.0, min_lr=0.1, warmup_iters=10, lr_decay_iters=110))
    lrs = [lr_at(i, cfg) for i in range(130)]
    assert lrs[0] == pytest.approx(1 / 11) and lrs[9] == pytest.approx(10 / 11)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # rising warmup
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.55)  # half way down the cosine
    assert all(a >= b for a, b in zip(lrs[10:110], lrs[11:111]))
    assert lrs[110] == lrs[129] == pytest.approx(0.1)


def test_grad_accumulation_equals_one_big_batch(tiny_settings):
    """Four accumulated micro-batches of 8 give the gradient of one batch of 32."""
    trainer = Trainer(load_config(base=tiny_settings(gradient_accumulation_steps=4, grad_clip=0.0)), verbose=False)
    batches = [trainer._micro_batch(m) for m in range(4)]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    _, loss = trainer.raw_model(x, y)
    loss.backward()
    expected = {n: p.grad.clone() for n, p in trainer.raw_model.named_parameters()}
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.optimizer.zero_grad = lambda set_to_none=True: None  # keep the step's gradients to compare
    trainer.train_step(0.0)
    for name, p in trainer.raw_model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6)
