"""The `growgpt` command: a thin layer over the library modules.

Every subcommand parses its flags, calls one library function and prints. A `UserError` anywhere
becomes one line on stderr and exit status 2, and so does an OSError about a path (too long, not
permitted, not a folder, disk full): the user can fix those. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import re
import sys

from growgpt.errors import UserError

_PATH_ERRNOS = {errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR,
                errno.ELOOP, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EEXIST}


def installed_version() -> str:
    """The installed distribution's version, else the package's __version__ (a source checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("growgpt")
    except PackageNotFoundError:
        import growgpt

        return getattr(growgpt, "__version__", "unknown")


def _cmd_prepare(args: argparse.Namespace) -> None:
    from growgpt.prepare import is_extract_folder, prepare, prepare_parts

    if len(args.inputs) == 1 and is_extract_folder(args.inputs[0]):
        for m in prepare_parts(args.inputs[0], args.out, tokenizer=args.tokenizer, val_fraction=args.val_fraction,
                               seed=args.seed, progress=not args.quiet):
            state = "already tokenized, unchanged" if m["skipped"] else "tokenized"
            print(f"part {m['part']}: {state}: train {m['splits']['train']['tokens']:,} tokens, "
                  f"val {m['splits']['val']['tokens']:,} tokens")
        print(f"corpus {args.out}: train with dataset = {args.out!r} (every part) or choose them with parts = ...")
        return

    manifest = prepare(args.inputs, args.out, tokenizer=args.tokenizer, val_fraction=args.val_fraction,
                       seed=args.seed, errors=args.errors, txt_docs=args.txt_docs, text_field=args.text_field,
                       progress=not args.quiet)
    if manifest.get("recut"):
        print(manifest["recut"]["message"])
    splits = manifest["splits"]
    print(f"wrote {args.out}: train {splits['train']['tokens']:,} tokens / {splits['train']['documents']:,} documents, "
          f"val {splits['val']['tokens']:,} tokens / {splits['val']['documents']:,} documents "
          f"({manifest['tokenizer']['name']}, vocab {manifest['vocab_size']:,}, {manifest['dtype']})")


def _cmd_dumps_list(args: argparse.Namespace) -> None:
    from growgpt.wiki.dumps import format_listing, list_parts

    print(format_listing(list_parts(args.wiki, args.date, mirror=args.mirror, multistream=args.multistream,
                                    timeout=args.timeout)))


def _cmd_fetch(args: argparse.Namespace) -> None:
    from growgpt.wiki.dumps import fetch

    paths = fetch(args.wiki, args.date, args.parts, args.to, mirror=args.mirror, multistream=args.multistream,
                  progress=not args.quiet, timeout=args.timeout, require_checksum=args.require_checksum)
    # Say per file what was checked: a listing without checksums leaves only the size to go by.
    for path in paths:
        algo = paths.verified_by.get(path)
        print(f"verified ({algo}): {path.name}" if algo else f"not verified (no checksum in the listing): {path.name}")
    verified = sum(1 for path in paths if paths.verified_by.get(path))
    print(f"{len(paths)} file(s) in {args.to}: {verified} verified, {len(paths) - verified} not verified")


def _cmd_extract(args: argparse.Namespace) -> None:
    from growgpt.wiki.extract import extract, format_summary

    manifests = extract(args.inputs, args.out, processes=args.processes, min_chars=args.min_chars,
                        keep_tables=args.keep_tables, progress=not args.quiet,
                        keep_disambiguation=args.keep_disambiguation, page_timeout=args.page_timeout)
    print(format_summary(manifests, out_dir=args.out))


def _cmd_dropped(args: argparse.Namespace) -> None:
    from growgpt.wiki.extract import dropped_pages, format_dropped

    rows, matched = dropped_pages(args.path, reason=args.reason, limit=None if args.all else args.limit)
    print(format_dropped(rows, matched))


def _cmd_train(args: argparse.Namespace) -> None:
    from growgpt.config import load_config
    from growgpt.train import train

    cfg = load_config(args.config, args.set)
    result = train(cfg, overwrite=args.overwrite, progress=not args.quiet)
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"done: iter {result['iter_num']}, best val loss {result['best_val_loss']:.4f}, "
              f"run folder {result['out_dir']}")


def _cmd_sample(args: argparse.Namespace) -> None:
    from growgpt.sample import sample

    if args.run_positional and args.run and args.run_positional != args.run:
        raise UserError(f"two run folders given: {args.run_positional} and --run {args.run}")
    texts = sample(args.run or args.run_positional, start=args.start, num_samples=args.num_samples,
                   max_new_tokens=args.max_new_tokens,
                   temperature=args.temperature, top_k=args.top_k, seed=args.seed, device=args.device,
                   checkpoint=args.checkpoint)
    for text in texts:
        print(text)
        print("---------------")


def _cmd_demo(args: argparse.Namespace) -> None:
    from growgpt.demo import run_demo

    run_demo(args.workdir, dump=args.dump, iters=args.iters, baseline=not args.no_baseline, progress=not args.quiet,
             compare_schedules=not args.no_compare_schedules)


def _cmd_grow(args: argparse.Namespace) -> None:
    from growgpt.grow import grow
    from growgpt.report import console_summary

    results = grow(args.plan, args.workdir, baseline=args.baseline, progress=not args.quiet,
                   compare_schedules=args.compare_schedules, repeat=args.repeat, repeat_grow=args.repeat_grow)
    # bpb (or the loss for scores without it), grow − jump and forgetting, each difference with the ±
    # of its 95 % paired interval over the val batches, as the report's verdicts judge them.
    print(f"done: {len(results['stages'])} stage(s); {console_summary(results)}; "
          f"report in {args.workdir}/run/report.md")


def _comparison_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compare-schedules", action="store_true",
                   help="also train the stages with the other schedule (cosine re-warm/re-decay <-> wsd trunk with "
                        "cooldown branches) in run/variants/, for a grow-cosine / grow-WSD / jump comparison")
    p.add_argument("--repeat", type=_repeat_count, default=1, metavar="K",
                   help="train the jump baseline K times with seeds seed, seed+1, ... (with --repeat-grow the stages "
                        "too): the report adds the seed-to-seed spread to the evaluation intervals")
    p.add_argument("--repeat-grow", action="store_true", help="with --repeat K: repeat the grow stages too")


def _part_size(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (1 <= value <= 10**13) or value != int(value):  # NaN fails too; 10 TB: no dump part is larger
        raise argparse.ArgumentTypeError(f"must be a whole number of bytes from 1 to 1e13, got {text!r}")
    return int(value)


def _repeat_count(text: str) -> int:
    from growgpt.grow import MAX_REPEAT

    if not text.isdigit() or not 1 <= int(text) <= MAX_REPEAT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_REPEAT}, got {text!r}")
    return int(text)


def _cmd_estimate(args: argparse.Namespace) -> None:
    from growgpt.plan_estimate import estimate_plan, format_estimate

    memory = int(args.memory_gb * 2**30) if args.memory_gb else None
    if args.gpu:
        from growgpt.hardware import device_memory

        memory = device_memory(args.gpu)
    print(format_estimate(estimate_plan(args.plan, args.workdir, device=args.device, memory=memory,
                                        probe=not args.no_probe, baseline=args.baseline == "jump",
                                        compare_schedules=args.compare_schedules, repeat=args.repeat,
                                        repeat_grow=args.repeat_grow, gpu=args.gpu, say=print,
                                        part_size=args.part_size)))


def _cmd_export(args: argparse.Namespace) -> None:
    from growgpt.export import export

    export(args.run, args.to, checkpoint=args.checkpoint, overwrite=args.overwrite)


def _cmd_report(args: argparse.Namespace) -> None:
    from growgpt.report import write_report

    paths = write_report(args.run)
    print(f"wrote {paths['markdown']}, {paths['html']} and {paths['png']}")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks (the config key table)."""


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append "(default: X)" to every option of `parser` and its subcommands whose help does not
    already state its default; flags (store_true) and options without a default are left alone."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _show_defaults(child)
            continue
        if not action.option_strings or action.default in (None, argparse.SUPPRESS) or action.nargs == 0:
            continue
        if isinstance(action.default, list) and not action.default:
            continue
        help_text = action.help or ""
        if "default" in help_text.lower():
            continue
        action.help = f"{help_text} (default: %(default)s)" if help_text else "(default: %(default)s)"


def _train_epilog() -> str:
    from growgpt.config import config_help

    return ("Config keys (nanoGPT's names) with their defaults; set them in CONFIG.toml, with --set key=value, or\n"
            "nanoGPT-style as --key=value (e.g. --batch_size=8 --compile=False). Later settings win: defaults,\n"
            "then the file, then the overrides in command-line order.\n\n" + config_help())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="growgpt", description="Grow a GPT on a corpus that grows in stages.")
    parser.add_argument("-V", "--version", action="version", version=f"growgpt {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    from growgpt.wiki.dumps import DEFAULT_MIRROR
    from growgpt.wiki.pages import DEFAULT_MIN_CHARS, DEFAULT_PAGE_TIMEOUT
    from growgpt.wiki.partwriter import DROP_REASONS

    def dump_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wiki", required=True, help="e.g. enwiki, simplewiki, elwikivoyage")
        p.add_argument("--date", required=True, help="YYYYMMDD or latest")
        p.add_argument("--mirror", default=DEFAULT_MIRROR,
                       help=f"dump mirror base URL, file:// URL or local folder (default {DEFAULT_MIRROR})")
        p.add_argument("--multistream", action="store_true",
                       help="the pages-articles-multistream files (and their indexes) instead")

    p = sub.add_parser("dumps", help="Wikipedia dumps")
    dumps_sub = p.add_subparsers(dest="dumps_command", required=True)
    p = dumps_sub.add_parser("list", help="list a dump's parts with page ranges, sizes and checksums")
    dump_args(p)
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="give up after this long (default: none; each listing file has 60 s anyway)")
    p.set_defaults(func=_cmd_dumps_list)

    p = sub.add_parser("fetch", help="download dump parts (resumable, checksum-verified)")
    dump_args(p)
    p.add_argument("--parts", required=True, help='e.g. 1, 1-3, "1,4,7-9" or all')
    p.add_argument("--to", required=True, metavar="DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="give up on the whole fetch after this long (default: none; stalled reads time out "
                        "after 60 s and are retried a few times)")
    p.add_argument("--require-checksum", action="store_true",
                   help="refuse, before downloading anything, files the listing gives no sha1 or md5 for")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("extract", help="dump parts (.xml.bz2 or .xml) to Parquet files of clean article text")
    p.add_argument("inputs", nargs="+", metavar="DUMP", help="dump part files")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: the cores available)")
    p.add_argument("--min-chars", type=int, default=DEFAULT_MIN_CHARS,
                   help=f"drop articles shorter than this many characters of clean text (default {DEFAULT_MIN_CHARS})")
    p.add_argument("--keep-tables", action="store_true", help="keep the text of table cells")
    p.add_argument("--keep-disambiguation", action="store_true",
                   help="keep disambiguation pages (by default they are dropped: lists of links, not text)")
    p.add_argument("--page-timeout", type=float, default=DEFAULT_PAGE_TIMEOUT, metavar="SECONDS",
                   help=f"drop a page whose cleaning takes more CPU time than this (default {DEFAULT_PAGE_TIMEOUT:g}; "
                        f"0: no limit)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("dropped", help="list the pages extract dropped, and why (largest first)")
    p.add_argument("path", metavar="PATH", help="an extract output folder, or one part's .dropped.parquet / .parquet")
    p.add_argument("--reason", choices=DROP_REASONS, default=None, help="only pages dropped for this reason")
    p.add_argument("--limit", type=int, default=20, help="show this many (default 20)")
    p.add_argument("--all", action="store_true", help="show every one")
    p.set_defaults(func=_cmd_dropped)

    p = sub.add_parser("prepare", help="tokenize text into train/val token shards")
    p.add_argument("inputs", nargs="+", metavar="TEXT", help=".txt/.jsonl/.parquet files or folders of them")
    p.add_argument("--out", required=True, metavar="DATA_DIR")
    p.add_argument("--tokenizer", choices=("gpt2", "char", "bytes"), default="gpt2",
                   help="gpt2: GPT-2 BPE, 50257 ids (default); char: the corpus's characters, a vocabulary built "
                        "from the text; bytes: UTF-8 bytes plus an end-of-text id, 257 ids. A corpus of parts "
                        "(an extract folder) needs gpt2 or bytes, whose vocabulary is the same for every part")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of documents held out for validation")
    p.add_argument("--seed", type=int, default=1337, help="seed of the train/val split and the shuffle")
    p.add_argument("--errors", choices=("strict", "replace"), default="strict",
                   help="what to do with bytes that are not UTF-8 (default: stop and name the file and offset)")
    p.add_argument("--txt-docs", choices=("auto", "file", "blocks", "line"), default="auto",
                   help="what one document is in a .txt file: the whole file, ~16 KB runs of paragraphs, or each "
                        "line (default auto: the file up to 1 MB, blocks for bigger files; a small corpus whose "
                        "documents split poorly is cut into smaller blocks)")
    p.add_argument("--text-field", default="text", metavar="NAME",
                   help="the JSONL field / Parquet or Arrow column that holds the text")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("train", help="train a GPT (run under torchrun for DDP)", formatter_class=_HelpFormatter,
                       epilog=_train_epilog(), allow_abbrev=False)
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="a TOML config (a nanoGPT .py config is refused: convert it to TOML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable); nanoGPT's --KEY=VALUE works too")
    p.add_argument("--overwrite", action="store_true",
                   help="when out_dir already holds a run and this one starts from scratch: move the old run aside to "
                        "OUT_DIR.old-<time> (nothing is deleted) instead of refusing")
    p.add_argument("--quiet", action="store_true",
                   help="no start summary or per-iteration lines: evaluations, warnings and the result only")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="generate text from a trained run or a Hugging Face GPT-2 folder")
    p.add_argument("run_positional", nargs="?", default=None, metavar="OUT_DIR",
                   help="the run folder (or a Hugging Face GPT-2 folder), as --run")
    p.add_argument("--run", default=None, metavar="OUT_DIR",
                   help="the run folder (or a Hugging Face GPT-2 folder); optional when --checkpoint is a path")
    p.add_argument("--start", default="\n",
                   help="the prompt, or FILE:path to read it from a file (default: a newline)")
    p.add_argument("--num-samples", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=200, help="sample among the k likeliest tokens; 0: all (default: 200)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--checkpoint", default="auto",
                   help="best, last, auto (best if present), a checkpoint / model.safetensors path, or a Hugging Face "
                        "GPT-2 folder (config.json + model.safetensors / pytorch_model.bin, single or sharded)")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("grow", help="run a stage plan: fetch, extract, prepare, train, evaluate, report")
    p.add_argument("plan", metavar="PLAN.toml")
    p.add_argument("--workdir", required=True, metavar="DIR")
    p.add_argument("--baseline", choices=("jump",), default=None,
                   help="also train from scratch on all the plan's parts with the same total iterations")
    _comparison_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_grow)

    p = sub.add_parser("estimate", help="disk, memory, VRAM and time a plan needs, before anything runs")
    p.add_argument("plan", metavar="PLAN.toml")
    p.add_argument("--workdir", default=None, metavar="DIR")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="estimate for this device (default: the plan's)")
    p.add_argument("--gpu", default=None,
                   help='estimate for this card, e.g. "RTX 4070" (12 GB) or "H100": its memory, and '
                        'time derived from its dense peak at 40 %% MFU (never probed here)')
    p.add_argument("--memory-gb", type=float, default=None, help="device memory to fit into, in GiB")
    p.add_argument("--baseline", choices=("jump",), default=None, help="include the from-scratch baseline")
    _comparison_arguments(p)
    p.add_argument("--no-probe", action="store_true", help="skip the measured timing probe on this machine")
    p.add_argument("--part-size", type=_part_size, default=None, metavar="BYTES",
                   help="for a wiki/date plan when the mirror cannot be read and no listing is kept in the workdir: "
                        "the compressed size to assume per part (e.g. 300e6)")
    p.set_defaults(func=_cmd_estimate)

    p = sub.add_parser("export", help="write a run's model as a Hugging Face folder (transformers, lm_eval)")
    p.add_argument("--run", required=True, metavar="OUT_DIR", help="the run folder, or a checkpoint file")
    p.add_argument("--to", required=True, metavar="HF_DIR", help="the folder to write (must be new or empty)")
    p.add_argument("--checkpoint", default="best",
                   help="best, last, auto (best if present) or a checkpoint / model.safetensors path")
    p.add_argument("--overwrite", action="store_true", help="replace HF_DIR if it holds files (never a run folder)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("report", help="write the Markdown/HTML report of a grow run")
    p.add_argument("run", metavar="RUN_DIR", help="the run folder of a grow workdir (WORKDIR/run)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("demo", help="a small grow plan on a real enwiki excerpt, tiny GPT on the CPU (a few minutes)")
    p.add_argument("--workdir", default="growgpt-demo")
    p.add_argument("--dump", default=None, help="any Wikipedia dump file (default: the enwiki excerpt in gensim)")
    p.add_argument("--iters", type=int, default=128, help="stage 1 iterations (stage 2 gets half)")
    p.add_argument("--no-baseline", action="store_true", help="skip the from-scratch 'jump' comparison")
    p.add_argument("--no-compare-schedules", action="store_true", help="skip the WSD chain (grow-cosine vs grow-WSD)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)
    _show_defaults(parser)
    return parser


_NANOGPT_OVERRIDE = re.compile(r"--([A-Za-z_][\w.-]*)(=.*)?", re.DOTALL)


def _train_option_names(parser: argparse.ArgumentParser) -> set[str]:
    """The long options of `growgpt train` without their dashes (set, overwrite, quiet, help, ...),
    read from its parser so that a new option is never taken for a nanoGPT config override."""
    for action in parser._subparsers._group_actions:
        if isinstance(action, argparse._SubParsersAction):
            return {option[2:] for a in action.choices["train"]._actions for option in a.option_strings
                    if option.startswith("--")}
    raise AssertionError("growgpt has no train command")


def _nanogpt_overrides(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`growgpt train ... --key=value` (nanoGPT's override style) as `--set=--key=value`, in place, so
    that it is applied in command-line order with the --set overrides and checked the same way. A
    config key given as `--key value` (no `=`) is a one-line error saying how to write it."""
    from growgpt.config import TrainConfig

    command = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if command is None or argv[command] != "train":
        return argv
    keys = set(TrainConfig.__dataclass_fields__)
    train_options = _train_option_names(parser)
    out = argv[:command + 1]
    rest = iter(argv[command + 1:])
    for arg in rest:
        if arg == "--":
            out += [arg, *rest]
            break
        m = _NANOGPT_OVERRIDE.fullmatch(arg)
        if m and m.group(1) not in train_options and (out[-1] != "--set"):
            if m.group(2) is None:
                if m.group(1) in keys:
                    raise UserError(f"{arg} needs its value after '=': write {arg}=VALUE (or --set {m.group(1)}=VALUE)")
                out.append(arg)  # argparse names the unknown option
                continue
            arg = f"--set={arg}"
        out.append(arg)
    return out


def _close_progress_bars() -> None:
    """Close the progress bars an error interrupted, so the error starts a line of its own: one left
    open would have the message follow its last frame on the same line. A bar with leave=False
    clears its line, the others end theirs."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is None:  # no bar was ever drawn
        return
    for bar in list(getattr(tqdm_module.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # a bar on a closed stream: nothing left to tidy
            pass


def _fail(message: str, exit_code: int) -> None:
    _close_progress_bars()
    rank = int(os.environ.get("RANK", 0))
    prefix = f"growgpt (rank {rank}): error: " if rank else "growgpt: error: "
    print(prefix + message.replace("\n", " "), file=sys.stderr)
    sys.exit(exit_code)


def main(argv: list[str] | None = None) -> None:
    # Text from mirrors and users' files can hold what the terminal cannot encode (a lone surrogate
    # escaped in JSON, odd bytes in a title): print it escaped rather than die printing it.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        argv = _nanogpt_overrides(argv, parser)
    except UserError as e:
        _fail(str(e), e.exit_code)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        _fail(str(e), e.exit_code)
    except OSError as e:
        # A path the user gave that the OS refuses (too long, not permitted, a file where a folder
        # belongs, a full disk) wherever it is first touched: their mistake to fix, not a bug.
        if e.filename is None or e.errno not in _PATH_ERRNOS:
            raise
        name = str(e.filename)
        name = name if len(name) <= 200 else f"{name[:100]}... ({len(name)} characters)"
        _fail(f"{name}: {e.strerror}", UserError.exit_code)
    except KeyboardInterrupt:
        _close_progress_bars()
        print("growgpt: interrupted; finished work (parts, shards, checkpoints) is kept, a re-run goes on",
              file=sys.stderr)
        sys.exit(130)
