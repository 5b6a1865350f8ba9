"""The `growgpt` command: a thin layer over the library modules.

Every subcommand parses its flags, calls one library function and prints. A `UserError` anywhere
becomes one line on stderr and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from growgpt.errors import UserError


def _cmd_prepare(args: argparse.Namespace) -> None:
    from growgpt.prepare import prepare

    manifest = prepare(args.inputs, args.out, tokenizer=args.tokenizer, val_fraction=args.val_fraction,
                       seed=args.seed, errors=args.errors, txt_docs=args.txt_docs)
    splits = manifest["splits"]
    print(f"wrote {args.out}: train {splits['train']['tokens']:,} tokens / {splits['train']['documents']:,} documents, "
          f"val {splits['val']['tokens']:,} tokens / {splits['val']['documents']:,} documents "
          f"({manifest['tokenizer']['name']}, vocab {manifest['vocab_size']:,}, {manifest['dtype']})")


def _cmd_train(args: argparse.Namespace) -> None:
    from growgpt.config import load_config
    from growgpt.train import train

    cfg = load_config(args.config, args.set)
    result = train(cfg)
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"done: iter {result['iter_num']}, best val loss {result['best_val_loss']:.4f}, run folder {result['out_dir']}")


def _cmd_sample(args: argparse.Namespace) -> None:
    from growgpt.sample import sample

    texts = sample(args.run, start=args.start, num_samples=args.num_samples, max_new_tokens=args.max_new_tokens,
                   temperature=args.temperature, top_k=args.top_k, seed=args.seed, device=args.device,
                   checkpoint=args.checkpoint)
    for text in texts:
        print(text)
        print("---------------")


def _cmd_demo(args: argparse.Namespace) -> None:
    from growgpt.demo import run_demo

    run_demo(args.workdir, iters=args.iters)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="growgpt", description="Grow a GPT on a corpus that grows in stages.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="tokenize text into train/val token shards")
    p.add_argument("inputs", nargs="+", metavar="TEXT", help=".txt/.jsonl/.parquet files or folders of them")
    p.add_argument("--out", required=True, metavar="DATA_DIR")
    p.add_argument("--tokenizer", choices=("gpt2", "char"), default="gpt2")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--errors", choices=("strict", "replace"), default="strict",
                   help="what to do with bytes that are not UTF-8 (default: stop and name the file and offset)")
    p.add_argument("--txt-docs", choices=("auto", "file", "blocks", "line"), default="auto",
                   help="what one document is in a .txt file: the whole file, ~16 KB runs of paragraphs, or each "
                        "line (default auto: the file up to 1 MB, blocks for bigger files)")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("train", help="train a GPT (run under torchrun for DDP)")
    p.add_argument("config", nargs="?", metavar="CONFIG.toml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="generate text from a trained run")
    p.add_argument("--run", required=True, metavar="OUT_DIR")
    p.add_argument("--start", default="\n", help='the prompt, or FILE:path to read it from a file')
    p.add_argument("--num-samples", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=200)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--checkpoint", default="auto", help="best, last, auto (best if present) or a checkpoint path")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("demo", help="prepare, train and sample a tiny model on the built-in corpus (CPU, ~1 min)")
    p.add_argument("--workdir", default="growgpt-demo")
    p.add_argument("--iters", type=int, default=500)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        rank = int(os.environ.get("RANK", 0))
        prefix = f"growgpt (rank {rank}): error: " if rank else "growgpt: error: "
        print(prefix + str(e).replace("\n", " "), file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("growgpt: interrupted; finished checkpoints are intact", file=sys.stderr)
        sys.exit(130)
