"""Device choice, dtype choice, the peak FLOP/s that MFU is measured against, and the GPU table.

MFU (model FLOPs utilisation) = achieved training FLOP/s / the device's dense peak for the dtype in
use. A fixed A100 figure (as nanoGPT uses) makes an H100 look twice as good as it is and a 4070 look
hopeless, so the peak comes from a table of dense (no sparsity) tensor-core figures per GPU model,
matched on the CUDA device name. On CPU there is no datasheet figure worth trusting, so the peak is
measured: the best of several large matmuls in the run's dtype, spaced out in time. `peak_flops` in
the config overrides both.

A CPU measurement taken while other work runs comes out low, and MFU against it comes out high (a
run once printed "mfu 198.8 %"). So the measurement is cached per machine, in
`peak_cache_path()` (`$GROWGPT_CACHE_DIR`, else `$XDG_CACHE_HOME/growgpt`, else
`~/.cache/growgpt`), keyed by CPU model, torch version, thread count and dtype: every run on a
machine measures against the same figure, taken once. `GROWGPT_REMEASURE_PEAK=1` measures afresh.
The file is written atomically and read defensively: an unreadable file or entry is ignored (and
rewritten). MFU is never shown above 100 %: such a figure proves the peak wrong, so `Peak.mfu` gives
None (the console prints "mfu ?" with the reason, metrics.jsonl records null), and a training rate
above a cached CPU peak is itself a lower bound on the true peak: `Peak.record_rate` raises the
cached figure to it and has the next run re-measure, keeping the larger of the two.

The table (`GPUS`: name, bf16 and fp32 dense peaks, memory) also answers `device_memory` for a card
that is not here (`growgpt estimate --gpu`). `memory_bytes` is the memory training can use on a
device: the card's total on CUDA, the host's RAM (capped by a container's cgroup limit) on CPU and
MPS. The trainer compares its estimate of a training step against it before allocating anything.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch


@dataclass(frozen=True)
class GPU:
    """One card of the table: dense peak FLOP/s (bf16/fp16 tensor cores with fp32 accumulate; fp32
    without tensor cores), from vendor datasheets / architecture whitepapers, and its total memory in
    MiB as nvidia-smi reports it."""

    name: str
    bf16_flops: float
    fp32_flops: float
    memory_mib: int


# Most specific names first: both lookups take the first row whose name the device name contains.
# A size in the device name ("A100-SXM4-80GB", "V100-SXM2-32GB") overrides the memory (device_memory).
GPUS: list[GPU] = [
    GPU("H200", 989.4e12, 66.9e12, 143_771),
    GPU("H100 NVL", 989.4e12, 66.9e12, 95_830),  # the peaks are the SXM figures, as "H100" matched before
    GPU("H100 PCIe", 756.0e12, 51.2e12, 81_559),
    GPU("H100", 989.4e12, 66.9e12, 81_559),  # SXM / HBM3
    GPU("A100", 312.0e12, 19.5e12, 40_960),  # the 80 GB model names its size: "A100-SXM4-80GB", "A100 80GB PCIe"
    GPU("L40S", 362.0e12, 91.6e12, 46_068),
    GPU("L4", 121.0e12, 30.3e12, 23_034),
    GPU("A10G", 70.0e12, 31.2e12, 23_028),
    GPU("RTX 4090", 165.2e12, 82.6e12, 24_564),
    GPU("RTX 4080", 97.5e12, 48.7e12, 16_376),
    GPU("RTX 4070 Ti", 80.2e12, 40.1e12, 12_282),
    GPU("RTX 4070", 58.3e12, 29.1e12, 12_282),
    GPU("RTX 3090", 71.0e12, 35.6e12, 24_576),
    GPU("RTX 3080", 59.5e12, 29.8e12, 10_240),
    GPU("V100", 125.0e12, 15.7e12, 16_384),
    GPU("T4", 65.0e12, 8.1e12, 15_360),
]


TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu", "cuda", "cuda:1", "mps"
    device_type: str  # "cpu" | "cuda" | "mps"
    dtype: str  # "float32" | "bfloat16" | "float16"

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.dtype]


def pick_runtime(device: str, dtype: str, local_rank: int | None = None) -> Runtime:
    from growgpt.errors import UserError

    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("config key 'device' = 'cuda' but CUDA is not available on this machine")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("config key 'device' = 'mps' but MPS is not available on this machine")
    device_type = device.split(":")[0]
    if device_type == "cuda" and local_rank is not None:
        device = f"cuda:{local_rank}"
    if dtype == "auto":
        if device_type == "cuda":
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"  # CPU autocast to bf16 is slow on most CPUs and costs accuracy
    if device_type == "cuda" and dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise UserError("config key 'dtype' = 'bfloat16' is not supported by this GPU; use float16")
    return Runtime(device=device, device_type=device_type, dtype=dtype)


def gpu_peak_flops(name: str, dtype: str) -> float | None:
    """The dense peak of the first card of GPUS whose name `name` contains, for `dtype`; None if unknown."""
    for gpu in GPUS:
        if gpu.name.lower() in name.lower():
            return gpu.fp32_flops if dtype == "float32" else gpu.bf16_flops
    return None


def gpu_name_key(name: str) -> str:
    """A GPU name without vendor words, case and punctuation: "NVIDIA GeForce RTX 4070" -> "rtx4070"."""
    text = re.sub(r"nvidia|geforce|tesla", "", name.lower())
    return re.sub(r"[^a-z0-9]", "", text)


def device_memory(name: str | None = None) -> int:
    """Total memory in bytes of a GPU named like the cards of GPUS ("RTX 4070", "A100 80GB", "H100"),
    or of the live CUDA device when name is None, "cuda" or "auto"."""
    from growgpt.errors import UserError

    if name is None or name.lower() in ("cuda", "auto") or name.lower().startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError("no CUDA device here: name the GPU to estimate for (e.g. 'RTX 4090')")
        index = int(name.split(":")[1]) if name and ":" in name else 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    size = re.search(r"(\d+)\s*G[Bi]?B?\b", name, re.IGNORECASE)
    wanted = gpu_name_key(name)
    for gpu in GPUS:
        k = gpu_name_key(gpu.name)
        if k in wanted or (wanted and wanted == k.removeprefix("rtx")):
            named = int(size.group(1)) * 1024 if size else 0  # "A100 80GB", "V100-SXM2-32GB" (MiB)
            if named >= 8 * 1024 and abs(named - gpu.memory_mib) > 0.1 * named:
                return named * 2**20
            return gpu.memory_mib * 2**20
    known = ", ".join(gpu.name for gpu in GPUS)
    raise UserError(f"unknown GPU {name!r}: give its memory in bytes instead, or one of {known}")


CACHE_DIR_ENV = "GROWGPT_CACHE_DIR"  # growgpt's per-machine cache folder (tests point it at a temporary one)
REMEASURE_ENV = "GROWGPT_REMEASURE_PEAK"  # set to 1 to measure the CPU peak afresh instead of using the cache
PEAK_CACHE_FILE = "peak_flops.json"
PEAK_CACHE_VERSION = 1

# The CPU probe: 1536^3 products reach the BLAS's full rate where 1024^3 ones fall short (measured on
# a 2-core EPYC: 58 vs 45 GFLOP/s) at half the cost of 2048^3; the pauses spread the repeats over a
# second or so, so that a burst of other work cannot slow all of them.
PEAK_PROBE_SIZE = 1536
PEAK_PROBE_REPEATS = 6
PEAK_PROBE_PAUSE_S = 0.05


def measure_cpu_matmul_flops(size: int = PEAK_PROBE_SIZE, repeats: int = PEAK_PROBE_REPEATS,
                             dtype: torch.dtype = torch.float32, pause_s: float = PEAK_PROBE_PAUSE_S) -> float:
    """Best matmul rate over `repeats` square products `pause_s` apart: the CPU's practical dense peak.

    Other processes can only slow a product down, never speed it up, so the best one is the
    closest to what this machine can do with the threads torch uses."""
    # A private generator: measuring must not move the global RNG that a resumed run just restored.
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dtype)
    b = torch.randn(size, size, generator=gen).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    torch.mm(a, b, out=out)  # warm up threads and caches
    best = float("inf")
    for k in range(repeats):
        if k and pause_s > 0:
            time.sleep(pause_s)
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / max(best, 1e-9)


def _positive_finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def cache_dir() -> Path | None:
    """growgpt's per-machine cache folder: $GROWGPT_CACHE_DIR, else $XDG_CACHE_HOME/growgpt, else
    ~/.cache/growgpt; None when there is no home folder to put it in."""
    explicit = os.environ.get(CACHE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore a relative path
        return Path(xdg) / "growgpt"
    try:
        return Path.home() / ".cache" / "growgpt"
    except RuntimeError:  # no HOME and no passwd entry
        return None


def peak_cache_path() -> Path | None:
    folder = cache_dir()
    return folder / PEAK_CACHE_FILE if folder is not None else None


def cpu_model_name() -> str:
    """The CPU's model as /proc/cpuinfo names it (x86 "model name", some ARM "Model"), else what
    the platform module knows."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
            return " ".join(value.split())
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_peak_key(dtype: str, threads: int | None = None) -> str:
    """The cache key of a CPU peak: what the measured figure depends on (the BLAS comes with torch)."""
    threads = threads if threads is not None else torch.get_num_threads()
    return f"{cpu_model_name()} | torch {torch.__version__} | {threads} threads | {dtype}"


def read_peak_cache(path: Path | None) -> dict[str, dict]:
    """The cache's valid entries by key; {} when the file is missing or unreadable, and an entry
    without a positive finite `flops` is left out: a damaged cache is ignored, then rewritten."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: bad JSON or not UTF-8
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {key: entry for key, entry in entries.items()
            if isinstance(entry, dict) and _positive_finite(entry.get("flops"))}


def write_peak_cache(path: Path | None, entries: dict[str, dict]) -> bool:
    """Write the cache atomically; False (and nothing raised) when it cannot be written: the cache
    only saves a measurement, so a read-only home must not stop training."""
    from growgpt.errors import UserError
    from growgpt.fsutil import atomic_write_json

    if path is None:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"version": PEAK_CACHE_VERSION, "entries": entries})
    except (OSError, UserError):
        return False
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def format_flops(x: float) -> str:
    return f"{x / 1e12:.2f} TFLOP/s" if x >= 1e12 else f"{x / 1e9:.1f} GFLOP/s"


def checked_mfu(achieved_flops: float, peak: float | None) -> float | None:
    """achieved / peak, or None when the peak is unknown or the ratio is above 1: a device cannot
    beat its own peak, so such a ratio says only that the peak figure is wrong."""
    if not _positive_finite(peak) or not _positive_finite(achieved_flops):
        return None
    mfu = achieved_flops / peak
    return mfu if mfu <= 1.0 else None


@dataclass
class Peak:
    """One device's peak FLOP/s for MFU (None: unknown), where the figure came from, what to do
    when it is evidently too low, and for a cached CPU measurement its cache key."""

    flops: float | None
    source: str
    remedy: str = "set peak_flops"
    cache_key: str | None = None
    raised_to: float = 0.0  # the highest training rate written to the cache as a lower bound

    def mfu(self, achieved_flops: float) -> float | None:
        """MFU of `achieved_flops` (FLOP/s on this device), None if unknown or above 100 %."""
        return checked_mfu(achieved_flops, self.flops)

    def console_text(self, achieved_flops: float) -> str:
        """The MFU part of a console line: ", mfu 45.1%"; ", mfu ? (...)" with the reason when the
        peak is evidently too low; "" when there is no peak figure at all."""
        if not self.flops:
            return ""
        mfu = self.mfu(achieved_flops)
        if mfu is not None:
            return f", mfu {100 * mfu:.1f}%"
        return (f", mfu ? (peak too low: {format_flops(achieved_flops)} achieved > {format_flops(self.flops)} "
                f"peak; {self.remedy})")

    def record_rate(self, achieved_flops: float) -> None:
        """A training rate above a cached CPU peak is a lower bound on the true peak: write it to the
        cache and have the next run re-measure (it keeps the larger figure). Once per new maximum."""
        if self.cache_key is None or not self.flops or not _positive_finite(achieved_flops):
            return
        if achieved_flops <= max(self.flops, self.raised_to):
            return
        self.raised_to = achieved_flops
        path = peak_cache_path()
        entries = read_peak_cache(path)
        old = entries.get(self.cache_key, {}).get("flops", 0.0)
        entries[self.cache_key] = {"flops": max(old, achieved_flops), "how": "raised to a training rate above it",
                                   "when": _now(), "remeasure": True}
        write_peak_cache(path, entries)


def cpu_peak(dtype: str = "float32") -> Peak:
    """The CPU's peak for `dtype`: the cached measurement for this CPU, torch and thread count, or
    a new one (then cached). Measured afresh when GROWGPT_REMEASURE_PEAK is set, or when a run found
    the cached figure too low (then the larger of the new measurement and that run's rate is kept)."""
    path = peak_cache_path()
    key = cpu_peak_key(dtype)
    entries = read_peak_cache(path)
    entry = entries.get(key)
    forced = _env_flag(REMEASURE_ENV)
    remedy = f"{REMEASURE_ENV}=1 re-measures it, peak_flops sets it"
    if entry is not None and not forced and entry.get("remeasure") is not True:
        return Peak(float(entry["flops"]), f"{dtype} matmul peak measured {entry.get('when', '?')}, cached in {path}",
                    f"raised in the cache for the next run; {remedy}", key)
    measured = measure_cpu_matmul_flops(dtype=TORCH_DTYPES[dtype])
    # A forced re-measure replaces the figure; after a too-low figure the training rate that proved
    # it too low stays a floor.
    flops = measured if forced or entry is None else max(measured, float(entry["flops"]))
    entries[key] = {"flops": flops, "how": "measured", "when": _now(), "remeasure": False}
    if write_peak_cache(path, entries):
        return Peak(flops, f"{dtype} matmul peak measured now, cached in {path}",
                    f"raised in the cache for the next run; {remedy}", key)
    why = "no cache folder" if path is None else f"{path} not writable"
    return Peak(flops, f"{dtype} matmul peak measured now (not cached: {why})", remedy)


def peak_flops(runtime: Runtime, override: float = 0.0) -> Peak:
    """The peak MFU is measured against: config peak_flops, the GPU table, or the cached CPU peak."""
    if override > 0:
        return Peak(override, "config peak_flops", "raise peak_flops")
    if runtime.device_type == "cuda":
        name = torch.cuda.get_device_name(runtime.device)
        peak = gpu_peak_flops(name, runtime.dtype)
        if peak is None:
            return Peak(None, f"unknown GPU {name!r}: set peak_flops for MFU")
        return Peak(peak, f"{name} dense {runtime.dtype} datasheet",
                    f"the table's figure for {name} is too low for this run: set peak_flops")
    if runtime.device_type == "cpu":
        return cpu_peak(runtime.dtype)
    return Peak(None, f"no peak figure for {runtime.device_type}: set peak_flops for MFU")


def host_memory_bytes() -> int | None:
    """Physical RAM, or the cgroup (container) memory limit when that is lower; None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX (Windows)
        try:
            import psutil

            total = int(psutil.virtual_memory().total)
        except ImportError:
            return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = int(Path(limit_file).read_text().strip())  # "max" (no limit) fails int()
        except (OSError, ValueError):
            continue
        if 0 < limit < total:
            total = limit
    return total if total > 0 else None


def memory_bytes(runtime: Runtime) -> tuple[int | None, str]:
    """(bytes training can use on the runtime's device or None if unknown, what that memory is)."""
    if runtime.device_type == "cuda":
        props = torch.cuda.get_device_properties(runtime.device)
        return int(props.total_memory), f"the GPU ({props.name})"
    return host_memory_bytes(), "this machine's RAM"


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_cpu_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the kernel (CPU training).

    By default glibc serves every allocation over ~32 MB with a fresh mmap and unmaps it on free.
    A training step allocates and frees several (batch x block x vocab) logits-sized tensors (hundreds
    of MB with the GPT-2 vocabulary), so every step page-faults and zeroes them anew: measured on 2
    cores, a third to two thirds of the step time went to the kernel (sys time). Serving them from the
    heap and never trimming it keeps the pages mapped; the process's memory then stays at its peak,
    which a training process reaches on its first step anyway. No-op (False) off glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))
    except (OSError, AttributeError):
        return False
