"""How fast, in how much memory? `growgpt extract` against WikiExtractor 3.1.0 and the floor.

The input is built once (and cached in --workdir, when one is given; without it, in a fresh private
temporary folder that is removed at the end): the pages of the enwiki sample (6 MB of XML, 206
pages; ../shared/data/wikidumps/gensim/...) repeated --copies times (default 17: ~105 MB of XML)
with fresh page ids and titles, and one sentence added to each copy so the duplicate filter keeps
every copy (it would otherwise drop 16/17 of the articles and the work of writing them). It is
written twice: as one bz2 stream, and as a multistream dump with its index (100 pages a stream,
like Wikimedia's), the file growgpt splits across processes by stream offsets. The single-stream
file growgpt splits at bzip2 block boundaries (found by a bit-level search where it cuts).

Every run is its own subprocess, on the same file, with the same number of processes:
* floor: what reading costs with no cleaning at all: stdlib bz2 decompression + ElementTree
  iterparse, clearing each page. On the multistream file each of N processes reads its share of
  the streams: the floor both of growgpt's runs are held to. On the single-stream file it is one
  process (stdlib bz2 cannot split a stream), printed for scale.
* growgpt extract, on each file: decompress, parse, clean, filter, deduplicate, write Parquet.
* WikiExtractor 3.1.0 (`python -m wikiextractor.WikiExtractor FILE --processes N -o DIR`), as
  published, with and without --no-templates. It reads bz2 itself, in one process, and has N
  extract processes.

Reported: seconds (best of --repeat), MB/s of XML, pages/s (all pages of the file), and the peak
RSS of the main process and of the largest worker (psutil, sampled every 20 ms; without psutil,
getrusage's largest child). The machine's load average is printed before and after: the timings
are only as good as the machine is quiet.

Memory must not grow with the input: growgpt is run once more on an input --large-copies times the
sample (default 2 x --copies, ~210 MB of XML), and the peak RSS at both sizes is printed side by
side. The last lines check the targets: >= 3x WikiExtractor's MB/s, >= 60 % of the floor's, peak
RSS <= 200 MB in every process and flat (within 10 % + 10 MB) from one input size to the other.

Repeats are interleaved, the fastest counts, and before each run the bench waits (up to
--quiet-wait s) for the machine to be idle; the CPU other processes took during each run is printed
(a shared 2-core machine can halve the speed of a run). The speed of this VM also drifts by itself
(the floor's CPU seconds for the same work vary 1.7x from one minute to the next, with nothing else
running), so the best of one contender and the best of another can come from different speeds:
the speed ratios are also printed round by round, each from runs made a minute or two apart,
with their median, to show the spread. The targets on WikiExtractor and memory are checked on the
best runs. The floor target is not: the best floor run and the best growgpt run come from
different minutes (one run of this bench, same code: 55-61 % single-stream and 53-78 %
multistream, round by round). It is checked twice on paired runs instead: with N processes, a
growgpt run and a floor run one right after the other, which goes first alternating ("back to
back", wall seconds); and drift-free, the floor and growgpt's extraction in turns in one process,
a fraction of a second each, on the same file, CPU seconds summed (`in_turns`): growgpt reads the
file as it would with 1 process (single-stream: sequentially) and with N (single-stream: by bzip2
blocks), and all the work its processes would share is done and counted in the one. The back to
back pairs are also run on a 1-copy input, and the differences between the two sizes compared:
the rate without what a run costs whatever its size (starting processes, importing pyarrow,
writing the last row group: ~1.0 s for growgpt's runs here, ~0.4 s for the floor's). (Started
together on the two cores instead, as this bench first did, they meet different speeds: pinned to
one core each, the same bz2 work took 1.0 s on one and 1.5-1.7 s on the other, minute by minute.)
Even in turns the ratio moves with the machine's state: bz2 gains more than Python code when the
machine is fast (floor 1.8 s vs 3.7 s for the same 36 MB, contended), so it is printed per round.

Run: python bench/extract_speed.py [--processes N] [--copies 17] [--large-copies 34] [--repeat 2]
     [--quiet-wait 60] [--workdir DIR]
(needs `pip install wikiextractor==3.1.0 psutil`: benchmark-only tools, not growgpt dependencies).
"""

from __future__ import annotations

import argparse
import bz2
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = (Path(__file__).resolve().parents[2] / "shared" / "data" / "wikidumps" / "gensim"
          / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
BUILD_VERSION = "2"  # bump when the way inputs are built changes: the cache is keyed on it


# ----------------------------------------------------------------------------------------------
# Inputs


def _copies(xml: str, copies: int) -> tuple[str, list[str], str]:
    """Header, pages (copies x the sample's, fresh ids and titles, distinct text), footer."""
    first = xml.index("<page>")
    last = xml.rindex("</page>") + len("</page>")
    header, body, footer = xml[:first], xml[first:last], xml[last:]
    pages = re.findall(r"<page>.*?</page>", body, flags=re.S)
    out = []
    step = 10 ** len(str(max(int(re.search(r"<id>(\d+)</id>", p).group(1)) for p in pages)))
    for k in range(copies):
        for p in pages:
            if k:
                p = re.sub(r"<id>(\d+)</id>", lambda m, k=k: f"<id>{int(m.group(1)) + k * step}</id>", p, count=1)
                p = re.sub(r"<title>(.*?)</title>", lambda m, k=k: f"<title>{m.group(1)} (copy {k})</title>", p,
                           count=1)
                if "<redirect" not in p:  # a sentence that makes the copy's clean text unique
                    p = re.sub(r"(<text[^>]*>)", lambda m, k=k: f"{m.group(1)}This is copy {k} of the page. ", p,
                               count=1)
            out.append("  " + p + "\n")
    return header, out, footer


def build_inputs(workdir: Path, copies: int) -> dict[str, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    single = workdir / f"benchwiki-x{copies}-pages-articles.xml.bz2"
    multi = workdir / f"benchwiki-x{copies}-pages-articles-multistream.xml.bz2"
    index = workdir / f"benchwiki-x{copies}-pages-articles-multistream-index.txt.bz2"
    stamp = workdir / f"built-v{BUILD_VERSION}-x{copies}"
    if stamp.exists() and single.exists() and multi.exists() and index.exists():
        return {"single": single, "multi": multi}
    print(f"building the {copies}x input in {workdir} (once) ...", flush=True)
    xml = bz2.decompress(SAMPLE.read_bytes()).decode("utf-8")
    header, pages, footer = _copies(xml, copies)
    data = (header + "".join(pages) + footer).encode("utf-8")
    single.write_bytes(bz2.compress(data, 9))
    lines = []
    with open(multi, "wb") as f:
        f.write(bz2.compress(header.encode("utf-8"), 9))
        for i in range(0, len(pages), 100):
            off = f.tell()
            group = pages[i:i + 100]
            for p in group:
                pid = re.search(r"<id>(\d+)</id>", p).group(1)
                title = re.search(r"<title>(.*?)</title>", p).group(1)
                lines.append(f"{off}:{pid}:{title}\n")
            f.write(bz2.compress("".join(group).encode("utf-8"), 9))
        f.write(bz2.compress(footer.encode("utf-8"), 9))
    index.write_bytes(bz2.compress("".join(lines).encode("utf-8"), 9))
    stamp.write_text(f"{len(data)} bytes of XML, {len(pages)} pages\n")
    return {"single": single, "multi": multi}


def xml_stats(path: Path) -> tuple[int, int]:
    """Bytes of XML and pages in a bz2 dump."""
    size = pages = 0
    with bz2.open(path, "rb") as f:
        while data := f.read(1 << 22):
            size += len(data)
            pages += data.count(b"<page>")
    return size, pages


# ----------------------------------------------------------------------------------------------
# The floor: decompression + iterparse, nothing else (run as `extract_speed.py --floor FILE N`)


def _floor_range(args: tuple[str, bytes, int, int]) -> int:
    import io
    import xml.etree.ElementTree as ET

    path, header, start, end = args
    with open(path, "rb") as f:
        f.seek(start)
        data = bz2.decompress(f.read(end - start))
    if not data.rstrip().endswith(b"</mediawiki>"):
        data += b"</mediawiki>"
    n = 0
    for _, el in ET.iterparse(io.BytesIO(header + data)):
        if el.tag.endswith("}page") or el.tag == "page":
            n += 1
            el.clear()
    return n


def floor(path: str, processes: int) -> int:
    import xml.etree.ElementTree as ET

    from growgpt.wiki.tasks import find_index, read_index

    index = find_index(path)
    if index is None:  # one stream: one process decompresses and parses it all
        n = 0
        with bz2.open(path, "rb") as f:
            for _, el in ET.iterparse(f):
                if el.tag.endswith("}page"):
                    n += 1
                    el.clear()
        return n
    import multiprocessing

    offsets = read_index(index)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = bz2.decompress(f.read(offsets[0]))
    bounds = offsets[:: max(1, len(offsets) // (processes * 8))] + [size]
    ranges = [(path, header, a, b) for a, b in zip(bounds, bounds[1:])]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return sum(pool.map(_floor_range, ranges))


# ----------------------------------------------------------------------------------------------
# In turns: the floor and growgpt in one process, alternating (run as `extract_speed.py --in-turns FILE`)


def _floor_steps(path: str, step: int = 256 << 10):
    """The 1-process floor's work on `path` (what `floor(path, 1)` does for a single stream: bz2
    decompression, streams one after another, and ElementTree's pull parser, pages cleared), `step`
    compressed bytes at a time; yields how many compressed bytes it has read."""
    import xml.etree.ElementTree as ET

    parser = ET.XMLPullParser(("end",))
    dec = bz2.BZ2Decompressor()
    with open(path, "rb") as f:
        while data := f.read(step):
            while data:
                parser.feed(dec.decompress(data))
                for _, el in parser.read_events():
                    if el.tag.endswith("}page") or el.tag == "page":
                        el.clear()
                data = b""
                if dec.eof:  # the next stream of a multistream file
                    data, dec = dec.unused_data, bz2.BZ2Decompressor()
            yield f.tell()


def in_turns(path: str, processes: int) -> tuple[float, float]:
    """CPU seconds of the floor and of growgpt's extraction, on the same file, in turns in this
    process: a task of growgpt's (read as with `processes` processes: a multistream range, a few
    bzip2 blocks of a single-stream file with the pages across their boundaries joined, or ~2 MB
    of XML read sequentially with 1 process; decompress, parse, clean, filter; its result pickled
    and unpickled as a worker's would be; then added to the Parquet writer), then the floor up to
    the same compressed offset. Everything every process of a run would do is done here and
    counted. Turns last a fraction of a second, so both meet the same machine speed. Imports are
    done before (the end-to-end runs count them)."""
    import hashlib
    import pickle

    import pyarrow.parquet  # noqa: F401  (imports, once per process, are not per-byte work: not counted)

    import growgpt.wiki.wikitext  # noqa: F401
    from growgpt.fsutil import hash_file
    from growgpt.wiki.pages import DEFAULT_MIN_CHARS
    from growgpt.wiki.partwriter import PartWriter, SeenHashes, WikiTemplates
    from growgpt.wiki.tasks import plan, reading, run_block_task, run_task

    out = Path(tempfile.mkdtemp(prefix="growgpt-in-turns-"))
    clock = time.process_time
    try:
        t = clock()
        part = plan([path], out)[0]
        opts = {"min_chars": DEFAULT_MIN_CHARS, "keep_tables": False, "clean": True}
        sha1 = hashlib.sha1()
        kind, stitch, tasks, on_the_side = reading(part, opts, sha1, by_blocks=processes > 1)
        run = run_block_task if kind == "blocks" else run_task
        if on_the_side:
            hash_file(path, h=sha1)
        writer = PartWriter(part, SeenHashes(), {"min_chars": opts["min_chars"], "keep_tables": False}, WikiTemplates())
        writer.sha1 = sha1
        ours, floor_cpu = clock() - t, 0.0
        steps, floor_at = _floor_steps(path), 0
        while True:
            t = clock()
            task = next(tasks, None)
            if task is not None:
                result = pickle.loads(pickle.dumps(run(task)))
                for r in stitch.take(result, writer.root_closed) if stitch else [result]:
                    writer.add(r)
            else:
                if stitch:
                    writer.add(stitch.fragment(final=True))
                writer.finish()
            ours += clock() - t
            t = clock()
            while floor_at < (task.comp_end if task else part.size):
                floor_at = next(steps, part.size)
            floor_cpu += clock() - t
            if task is None:
                return floor_cpu, ours
    finally:
        shutil.rmtree(out, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Running and measuring


def _system_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, all processes), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, threshold: float = 0.25) -> float:
    """Wait (up to max_wait seconds) until the other processes on the machine use under
    `threshold` cores over one second; returns the cores they used in the last second."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = _system_busy()
        time.sleep(1.0)
        load = _system_busy() - b0
        if not load == load or load < threshold or time.monotonic() >= deadline:
            return load


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # every reaped descendant, workers included
    return r.ru_utime + r.ru_stime


def measure(cmd: list[str], cwd: Path | None = None) -> dict:
    """Run `cmd`; wall seconds, CPU seconds (it and all its processes), and peak RSS (MB) of the
    process itself and of its largest child."""
    try:
        import psutil
    except ImportError:
        psutil = None
    cpu0 = _children_cpu()
    busy0 = _system_busy()
    self0 = time.process_time()
    t0 = time.perf_counter()

    def others() -> float:  # CPU seconds the rest of the machine took meanwhile (not us, not the run)
        return max(0.0, _system_busy() - busy0 - (_children_cpu() - cpu0) - (time.process_time() - self0))

    if psutil is None:
        r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        secs = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {"rc": r.returncode, "seconds": secs, "cpu": _children_cpu() - cpu0, "main_mb": peak,
                "worker_mb": float("nan"), "stderr": r.stderr, "others": others()}
    err = tempfile.TemporaryFile("w+")
    proc = psutil.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    main_peak = 0
    child_peak: dict[int, int] = {}
    while proc.poll() is None:
        try:
            main_peak = max(main_peak, proc.memory_info().rss)
            for c in proc.children(recursive=True):
                try:
                    child_peak[c.pid] = max(child_peak.get(c.pid, 0), c.memory_info().rss)
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        time.sleep(0.05)
    secs = time.perf_counter() - t0
    proc.wait()
    err.seek(0)
    return {"rc": proc.returncode, "seconds": secs, "cpu": _children_cpu() - cpu0, "main_mb": main_peak / 2**20,
            "worker_mb": max(child_peak.values(), default=0) / 2**20, "stderr": err.read(), "others": others()}


def bench_folders(workdir: Path | None) -> tuple[Path, Path, bool]:
    """(workdir, out, made): where the inputs are built and the runs' output folder, and whether the
    bench made the workdir. Without --workdir: a fresh private temporary folder (mkdtemp), removed at
    the end. With one, the inputs are cached in it under their own names; the output goes to a fresh
    subfolder the bench makes, and nothing else in the workdir is ever deleted."""
    made = workdir is None
    if made:
        workdir = Path(tempfile.mkdtemp(prefix="growgpt-extract-bench-"))
    else:
        workdir.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="out-", dir=workdir))
    return workdir, out, made


def _empty(folder: Path) -> None:
    """Delete what the runs wrote into `folder` (the bench's own output folder), keeping the folder:
    removed and made again, its name could be taken in between."""
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _one_after_another(cmds: dict[str, list[str]], out: Path, reverse: bool) -> dict[str, float] | str:
    """Wall seconds of each command, run one right after another (in the reverse order if
    `reverse`), the output folder emptied around each; or the end of the first failure's stderr."""
    got = {}
    for name, cmd in reversed(cmds.items()) if reverse else cmds.items():
        _empty(out)
        r = measure(cmd)
        _empty(out)
        if r["rc"]:
            return r["stderr"][-2000:]
        got[name] = r["seconds"]
    return got


def _median_verdict(what: str, ratios: list[float]) -> tuple[str, bool]:
    """A verdict line on the floor target from rounds of floor/growgpt ratios: their median counts."""
    import statistics

    med = statistics.median(ratios)
    return f"{what}: {100 * med:.0f} % (median of {', '.join(f'{100 * r:.0f} %' for r in ratios)})", med >= 0.6


def _ours(py: str, path: Path, out: Path, processes: int, clean: bool = True) -> list[str]:
    # the library call `growgpt extract` makes, without depending on how the CLI prints; with
    # clean=False every page is parsed but not cleaned: what the rest of the pipeline costs
    code = ("import sys; from growgpt.wiki.extract import extract; "
            f"extract([sys.argv[1]], sys.argv[2], processes=int(sys.argv[3]), progress=False, _clean={clean})")
    return [py, "-c", code, str(path), str(out), str(processes)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--copies", type=int, default=17)
    ap.add_argument("--large-copies", type=int, default=None,
                    help="copies in the second, larger input (memory flatness); default 2 x --copies, 0: skip")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each; the best counts")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="cache the built inputs here (default: a fresh temporary folder, removed at the end)")
    ap.add_argument("--skip-wikiextractor", action="store_true")
    ap.add_argument("--quiet-wait", type=float, default=60,
                    help="seconds to wait, before each run, for the other processes on the machine to go idle")
    ap.add_argument("--floor", nargs=2, metavar=("FILE", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--in-turns", nargs=2, metavar=("FILE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor:
        print(floor(args.floor[0], int(args.floor[1])))
        return
    if args.in_turns:
        print(*in_turns(args.in_turns[0], int(args.in_turns[1])))
        return
    if not SAMPLE.is_file():
        sys.exit(f"sample not found: {SAMPLE}")
    workdir, out, made = bench_folders(args.workdir)
    try:
        _bench(args, workdir, out)
    finally:
        shutil.rmtree(workdir if made else out, ignore_errors=True)


def _bench(args: argparse.Namespace, workdir: Path, out: Path) -> None:
    files = build_inputs(workdir, args.copies)
    xml_bytes, pages = xml_stats(files["single"])
    large = 2 * args.copies if args.large_copies is None else args.large_copies
    large_files = build_inputs(workdir, large) if large else None
    large_bytes = xml_stats(large_files["single"])[0] if large_files else 0
    n = args.processes
    py = sys.executable
    me = str(Path(__file__).resolve())
    runs = [
        ("floor: bz2 + iterparse, 1 process", "single", 1, [py, me, "--floor", str(files["single"]), "1"]),
        (f"floor: bz2 + iterparse, {n} processes", "multi", n, [py, me, "--floor", str(files["multi"]), str(n)]),
        ("growgpt extract", "single", n, _ours(py, files["single"], out, n)),
        ("growgpt extract", "multi", n, _ours(py, files["multi"], out, n)),
        ("growgpt extract", "single", 1, _ours(py, files["single"], out, 1)),
        ("growgpt extract, cleaner switched off", "multi", n, _ours(py, files["multi"], out, n, clean=False)),
    ]
    if large_files:
        runs += [
            ("growgpt extract, large input", "single", n, _ours(py, large_files["single"], out, n)),
            ("growgpt extract, large input", "multi", n, _ours(py, large_files["multi"], out, n)),
        ]
    if not args.skip_wikiextractor:
        runs += [
            ("WikiExtractor 3.1.0", "single", n, [py, "-m", "wikiextractor.WikiExtractor", str(files["single"]),
                                                  "--processes", str(n), "-o", str(out)]),
            ("WikiExtractor 3.1.0 --no-templates", "single", n,
             [py, "-m", "wikiextractor.WikiExtractor", str(files["single"]), "--processes", str(n), "--no-templates",
              "-o", str(out)]),
        ]
    print(f"input: {xml_bytes / 1e6:.1f} MB of XML, {pages:,} pages; {files['single'].stat().st_size / 1e6:.1f} MB "
          f"single-stream bz2, {files['multi'].stat().st_size / 1e6:.1f} MB multistream bz2")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({len(os.sched_getaffinity(0))} cores)", flush=True)
    # Repeats are interleaved (every run once, then every run again, ...) so that a burst of other
    # work on the machine does not land on all the runs of one contender; the fastest run counts,
    # and before each the bench waits (up to --quiet-wait s) for the rest of the machine to be idle.
    best: dict[int, dict | None] = {}
    seconds: dict[int, list[float | None]] = {i: [] for i in range(len(runs))}  # every round's, for paired ratios
    failed: set[int] = set()
    for rep in range(args.repeat):
        for i, (name, kind, procs, cmd) in enumerate(runs):
            if i in failed:
                seconds[i].append(None)
                continue
            _empty(out)
            before = wait_quiet(args.quiet_wait)
            r = measure(cmd)
            _empty(out)
            if r["rc"] != 0:
                print(f"{name} on {kind}: FAILED (exit {r['rc']}): {r['stderr'][-2000:]}", flush=True)
                failed.add(i)
                best[i] = None
                seconds[i].append(None)
                continue
            seconds[i].append(r["seconds"])
            print(f"  run {rep + 1}: {name} [{kind}, {procs} proc]: {r['seconds']:.1f} s, {r['cpu']:.1f} CPU s; "
                  f"other processes: {before:.2f} cores before, {r['others'] / r['seconds']:.2f} cores during",
                  flush=True)
            b = best.get(i)
            if b is None or r["seconds"] < b["seconds"]:
                best[i] = dict(r, cpu=min(r["cpu"], b["cpu"]) if b else r["cpu"])
            else:
                b["cpu"] = min(b["cpu"], r["cpu"])
    results = [(name, kind, procs, best.get(i)) for i, (name, kind, procs, _) in enumerate(runs)]
    index = {(name, kind, procs): i for i, (name, kind, procs, _) in enumerate(runs)}

    def paired(ours: tuple, theirs: tuple) -> tuple[float | None, list[float]]:
        """Median over the rounds of (their seconds / ours) for runs made minutes apart, and each
        round's: on a VM whose speed drifts (the floor's CPU seconds for the same work vary 1.7x
        here from one minute to the next), the best of each can come from different speeds."""
        if ours not in index or theirs not in index:
            return None, []
        import statistics

        got = [t / o for o, t in zip(seconds[index[ours]], seconds[index[theirs]]) if o and t]
        return (statistics.median(got) if got else None), got
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print()
    print("| what | file | processes | seconds | MB/s of XML | pages/s | CPU s (all processes) | MB of XML per CPU s "
          "| peak RSS main (MB) | peak RSS worker (MB) | other processes (cores) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, kind, procs, r in results:
        if r is None:
            print(f"| {name} | {kind} | {procs} | failed | | | | | | | |")
            continue
        nb, npg = (large_bytes, pages * large // args.copies) if "large input" in name else (xml_bytes, pages)
        print(f"| {name} | {kind} | {procs} | {r['seconds']:.1f} | {nb / r['seconds'] / 1e6:.1f} | "
              f"{npg / r['seconds']:,.0f} | {r['cpu']:.1f} | {nb / r['cpu'] / 1e6:.1f} | {r['main_mb']:.0f} | "
              f"{r['worker_mb']:.0f} | {r['others'] / r['seconds']:.2f} |")

    def rate(name, kind, procs, what="seconds"):
        for n_, k, p, r in results:
            if n_ == name and k == kind and p == procs and r:
                return xml_bytes / r[what] / 1e6
        return None

    ours_s, ours_m = rate("growgpt extract", "single", n), rate("growgpt extract", "multi", n)
    we = rate("WikiExtractor 3.1.0", "single", n)
    f1 = rate("floor: bz2 + iterparse, 1 process", "single", 1)
    fn = rate(f"floor: bz2 + iterparse, {n} processes", "multi", n)
    print()
    if we and ours_s:
        per_cpu = rate("growgpt extract", "single", n, "cpu") / rate("WikiExtractor 3.1.0", "single", n, "cpu")
        print(f"growgpt / WikiExtractor ({n} processes), MB/s: single-stream {ours_s / we:.1f}x, multistream "
              f"{ours_m / we:.1f}x; per CPU second: {per_cpu:.1f}x")
    if f1 and ours_s:
        print(f"growgpt / floor: single-stream vs {n}-process floor {100 * ours_s / fn:.0f} % (vs the 1-process "
              f"floor {100 * ours_s / f1:.0f} %), multistream vs {n}-process floor {100 * ours_m / fn:.0f} %")
    we_nt = rate("WikiExtractor 3.1.0 --no-templates", "single", n)

    def found(name, kind):
        return next((r for n_, k, p, r in results if n_ == name and k == kind and p == n and r), None)

    print()
    verdicts = []
    if we and ours_s:
        # both of growgpt's files: users get whichever kind of dump they download
        verdicts.append((f"speed vs WikiExtractor (default, templates expanded): single-stream {ours_s / we:.1f}x, "
                         f"multistream {(ours_m or 0) / we:.1f}x", min(ours_s, ours_m or 0) / we >= 3))
        if we_nt:  # no target: the floor itself, which no reader can beat, is ~2x it on 2 cores
            print(f"vs WikiExtractor --no-templates (no target): single-stream {ours_s / we_nt:.1f}x, "
                  f"multistream {(ours_m or 0) / we_nt:.1f}x")
    if f1 and we_nt:
        print(f"(for scale: the floor alone, no cleaning at all, is {f1 / we:.1f}x WikiExtractor's MB/s and "
              f"{f1 / we_nt:.1f}x WikiExtractor --no-templates' on the single-stream file; both pay the same bz2)")
    if fn and ours_s:
        # No verdict on these: each best may come from a different minute of a machine whose speed
        # drifts; the floor target is judged on the paired checks below (back to back, in turns).
        print(f"vs the {n}-process floor, best run of each (from different minutes; not a verdict): single-stream "
              f"{100 * ours_s / fn:.0f} %, multistream {100 * (ours_m or 0) / fn:.0f} %")
    for kind in ("single", "multi"):
        small, big = found("growgpt extract", kind), found("growgpt extract, large input", kind)
        if small:
            peak = max(small["main_mb"], small["worker_mb"] if small["worker_mb"] == small["worker_mb"] else 0)
            line = (f"peak RSS, {kind}: {xml_bytes / 1e6:.0f} MB input: main {small['main_mb']:.0f} MB, "
                    f"worker {small['worker_mb']:.0f} MB")
            ok = peak <= 200
            if big:
                line += (f"; {large_bytes / 1e6:.0f} MB input: main {big['main_mb']:.0f} MB, "
                         f"worker {big['worker_mb']:.0f} MB")
                ok = ok and max(big["main_mb"], big["worker_mb"]) <= 200
                for key in ("main_mb", "worker_mb"):
                    ok = ok and big[key] <= small[key] * 1.1 + 10
            verdicts.append((line, ok))
    print("\nthe spread: speed ratios round by round (their seconds / ours in the same round), median first:")
    for label, theirs, ratio in (("WikiExtractor", ("WikiExtractor 3.1.0", "single", n), True),
                                 ("WikiExtractor --no-templates",
                                  ("WikiExtractor 3.1.0 --no-templates", "single", n), True),
                                 (f"{n}-process floor", (f"floor: bz2 + iterparse, {n} processes", "multi", n), False)):
        parts = []
        for kind in ("single", "multi"):
            med, each = paired(("growgpt extract", kind, n), theirs)
            if med is not None:
                fmt = (lambda x: f"{x:.1f}x") if ratio else (lambda x: f"{100 * x:.0f} %")
                parts.append(f"{kind}-stream {fmt(med)} ({', '.join(fmt(x) for x in each)})")
        if parts:
            print(f"  vs {label}: " + "; ".join(parts))
    print()
    # The drift-free check against the floor: both in one process, in turns (see `in_turns`), each
    # round in a fresh process; the median round counts.
    if args.repeat:
        print("\nin turns, in one process (floor CPU s / growgpt CPU s, for the same file, growgpt reading it as "
              "with the number of processes given):")
        for kind, procs in (("single", 1), ("single", n), ("multi", n)):
            ratios = []
            for _ in range(args.repeat):
                wait_quiet(args.quiet_wait)
                proc = subprocess.run([py, me, "--in-turns", str(files[kind]), str(procs)], capture_output=True,
                                      text=True)
                if proc.returncode:
                    print(f"  {kind}: FAILED: {proc.stderr[-2000:]}")
                    break
                f, o = map(float, proc.stdout.split())
                ratios.append(f / o)
                print(f"  {kind}-stream, as with {procs} process{'es' if procs > 1 else ''}: floor {f:.1f} CPU s, "
                      f"growgpt {o:.1f} CPU s: {100 * ratios[-1]:.0f} %", flush=True)
            if ratios:
                how = "sequentially" if kind == "single" and procs == 1 else (
                    "by bzip2 blocks" if kind == "single" else "by its index")
                verdicts.append(_median_verdict(f"speed vs the floor, in turns in one process (CPU s), {kind}-stream "
                                                f"read {how}", ratios))
        # The N-process floor target once more, each growgpt run paired with a floor run made just
        # before it (seconds apart, not minutes as in the rounds above): wall seconds compared.
        print(f"\nback to back, {n} processes (floor seconds / growgpt seconds, one run right after the other, "
              f"which goes first alternating):")
        for kind in ("single", "multi"):
            ratios = []
            for i in range(args.repeat):
                wait_quiet(args.quiet_wait)
                got = _one_after_another({"floor": [py, me, "--floor", str(files["multi"]), str(n)],
                                          "ours": _ours(py, files[kind], out, n)}, out, reverse=i % 2 == 1)
                if isinstance(got, str):
                    print(f"  {kind}: FAILED: {got}")
                    break
                ratios.append(got["floor"] / got["ours"])
                print(f"  {kind}: floor {got['floor']:.1f} s, growgpt {got['ours']:.1f} s: {100 * ratios[-1]:.0f} %"
                      f"{' (growgpt first)' if i % 2 else ''}", flush=True)
            if ratios:
                verdicts.append(_median_verdict(f"speed vs the {n}-process floor, back to back, {kind}-stream", ratios))
        # The same pairs on a 1-copy input too: the difference between the two sizes is the rate
        # without what a run costs whatever its size (starting processes, importing pyarrow in
        # growgpt's main process, writing the last row group), which the issue's ~100 MB input
        # is meant to keep from hiding it.
        small = build_inputs(workdir, 1)
        print(f"\nrate without start-up, back to back, {n} processes (floor / growgpt, seconds of the "
              f"{args.copies}-copy input minus seconds of the 1-copy input):")
        for kind in ("single", "multi"):
            ratios = []
            for i in range(args.repeat):
                wait_quiet(args.quiet_wait)
                got = _one_after_another({"floor": [py, me, "--floor", str(files["multi"]), str(n)],
                                          "ours": _ours(py, files[kind], out, n),
                                          "floor 1": [py, me, "--floor", str(small["multi"]), str(n)],
                                          "ours 1": _ours(py, small[kind], out, n)}, out, reverse=i % 2 == 1)
                if isinstance(got, str):
                    print(f"  {kind}: FAILED: {got}")
                    break
                ratios.append((got["floor"] - got["floor 1"]) / (got["ours"] - got["ours 1"]))
                print(f"  {kind}: floor {got['floor']:.1f} - {got['floor 1']:.1f} s, growgpt "
                      f"{got['ours']:.1f} - {got['ours 1']:.1f} s: {100 * ratios[-1]:.0f} %", flush=True)
            if ratios:
                verdicts.append(_median_verdict(f"rate vs the {n}-process floor without start-up, back to back, "
                                                f"{kind}-stream", ratios))
    print()
    for line, ok in verdicts:
        print(f"[{'PASS' if ok else 'MISS'}] {line}")
    print(f"\nrerun: {Path(py).name} bench/extract_speed.py --processes {n} --copies {args.copies} "
          f"--large-copies {large} --repeat {args.repeat} --quiet-wait {args.quiet_wait:g}")


if __name__ == "__main__":
    main()
