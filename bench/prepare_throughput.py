#!/usr/bin/env python
"""Throughput of `growgpt prepare` (GPT-2 BPE) against raw tiktoken on the same text, same run.

    python bench/prepare_throughput.py [--mb 40] [--threads N] [--files 400]

The text is real prose with code, Python's language reference (tests/python_reference.py), cut into
--files .txt files of equal size (about --mb MB in all) in a temporary folder, as a user's folder of
documents would be. Nothing is downloaded.

Rows, each on exactly the same documents:
  raw encode_ordinary         tiktoken's encode_ordinary, one document after another, one thread:
                              the floor of any prepare script (nanoGPT's prepare.py per process).
  raw encode_ordinary_batch   tiktoken's batch API over all documents with --threads threads: the
                              ceiling of BPE alone on this machine, no reading or writing.
  growgpt prepare             the whole job: read files, split, shuffle, encode, write shards and
                              manifest.
Target from the issue: growgpt prepare >= 90 % of raw encode_ordinary's MB/s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # run from a checkout without installing; the corpus lives in tests/

from growgpt.prepare import default_threads, prepare  # noqa: E402
from growgpt.tokenizer import GPT2Tokenizer  # noqa: E402

from python_reference import python_reference_documents  # noqa: E402


def make_corpus(folder: Path, megabytes: float, files: int) -> list[str]:
    base = [text for _, text in python_reference_documents()]
    pool = "\n\n".join(base)
    per_file = int(megabytes * 1e6 / files)
    texts = []
    for i in range(files):
        start = (i * 7919 * 31) % max(1, len(pool) - per_file)
        text = f"Document {i}.\n" + pool[start:start + per_file]
        (folder / f"doc{i:05d}.txt").write_text(text, encoding="utf-8")
        texts.append(text)
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=40.0, help="MB of text (default 40)")
    ap.add_argument("--files", type=int, default=400, help="number of .txt documents (default 400)")
    ap.add_argument("--threads", type=int, default=default_threads(), help="threads for the batch rows")
    args = ap.parse_args()

    tok = GPT2Tokenizer()
    with tempfile.TemporaryDirectory(prefix="growgpt-bench-") as tmp:
        src = Path(tmp) / "text"
        src.mkdir()
        texts = make_corpus(src, args.mb, args.files)
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        tok.encode("warm up")

        t0 = time.perf_counter()
        raw_tokens = sum(len(tok.encoding.encode_ordinary(t)) for t in texts)
        raw_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        batch_tokens = sum(len(ids) for ids in tok.encoding.encode_ordinary_batch(texts, num_threads=args.threads))
        batch_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        # Each file one document, as the raw rows see it: with --txt-docs auto, big files would be cut into
        # paragraph blocks and a small corpus (few --files or --mb) re-cut, and the token counts would differ.
        manifest = prepare([src], Path(tmp) / "data", tokenizer="gpt2", progress=False, num_threads=args.threads,
                           txt_docs="file")
        prep_s = time.perf_counter() - t0
        prep_tokens = sum(s["tokens"] for s in manifest["splits"].values()) - sum(
            s["documents"] for s in manifest["splits"].values())  # minus one separator per document

    assert raw_tokens == batch_tokens == prep_tokens, (raw_tokens, batch_tokens, prep_tokens)
    mb = nbytes / 1e6
    print(f"# prepare throughput, GPT-2 BPE: {mb:.1f} MB of text in {args.files} files, {raw_tokens:,} tokens, "
          f"{os.cpu_count()} CPUs, {args.threads} threads for batch rows")
    print(f"{'row':32s} {'seconds':>8s} {'MB/s':>8s} {'Mtok/s':>8s} {'vs raw':>8s}")
    for name, secs in (("raw encode_ordinary (1 thread)", raw_s),
                       (f"raw encode_ordinary_batch ({args.threads} thr)", batch_s),
                       ("growgpt prepare", prep_s)):
        print(f"{name:32s} {secs:8.2f} {mb / secs:8.2f} {raw_tokens / secs / 1e6:8.2f} {raw_s / secs:8.1%}")
    ratio = raw_s / prep_s
    print(f"growgpt prepare = {ratio:.0%} of raw encode_ordinary's MB/s (target >= 90%): "
          f"{'PASS' if ratio >= 0.9 else 'FAIL'}")
    print("rerun: python " + " ".join(shlex.quote(a) for a in sys.argv))


if __name__ == "__main__":
    main()
