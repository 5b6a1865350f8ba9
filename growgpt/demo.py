"""`growgpt demo`: the whole core workflow on the built-in corpus, on a CPU, in about a minute.

prepare (char-level, the Python language reference that ships with CPython) -> train a tiny GPT
-> sample. Re-running it resumes: finished steps are skipped and training continues from the
checkpoint, so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

from pathlib import Path

from growgpt import checkpoint as ckpt_io
from growgpt.builtin import python_reference_documents
from growgpt.config import load_config
from growgpt.prepare import prepare
from growgpt.sample import sample
from growgpt.train import train

DEMO_MODEL = dict(n_layer=4, n_head=4, n_embd=128, block_size=128, batch_size=32, gradient_accumulation_steps=1,
                  dropout=0.0, learning_rate=2e-3, min_lr=2e-4, warmup_iters=50, beta2=0.99, weight_decay=0.1,
                  eval_iters=20, log_interval=50, compile=False, device="cpu")


def run_demo(workdir: str | Path, iters: int = 500, verbose: bool = True) -> dict:
    workdir = Path(workdir)
    data_dir, run_dir = workdir / "data", workdir / "run"
    if not (data_dir / "manifest.json").is_file():
        prepare([], str(data_dir), tokenizer="char", documents=python_reference_documents(), progress=verbose)
    settings = dict(DEMO_MODEL, dataset=str(data_dir), out_dir=str(run_dir), max_iters=iters,
                    lr_decay_iters=iters, eval_interval=max(iters // 5, 1))
    resume = (run_dir / ckpt_io.CHECKPOINT).is_file()
    if resume:
        settings["init_from"] = "resume"
    cfg = load_config(base=settings)
    result = train(cfg, verbose=verbose)
    texts = sample(str(run_dir), start="The ", num_samples=1, max_new_tokens=300, device="cpu")
    if verbose:
        print(f"\nsample from {run_dir} (val loss {result['best_val_loss']:.3f}):\n{texts[0]}")
        print(f"\nnext: growgpt sample --run {run_dir} --start \"The \"")
    return {**result, "sample": texts[0]}
