"""Device choice, dtype choice and the peak FLOP/s that MFU is measured against.

MFU (model FLOPs utilisation) = achieved training FLOP/s / the device's dense peak for the dtype in
use. A fixed A100 figure (as nanoGPT uses) makes an H100 look twice as good as it is and a 4070 look
hopeless, so the peak comes from a table of dense (no sparsity) tensor-core figures per GPU model,
matched on the CUDA device name. On CPU there is no datasheet figure worth trusting, so the peak is
measured: the best of a few large fp32 matmuls. `peak_flops` in the config overrides both.

`memory_bytes` is the memory training can use on a device: the card's total on CUDA, the host's
RAM (capped by a container's cgroup limit) on CPU and MPS. The trainer compares its estimate of a
training step against it before allocating anything.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

# Dense peak FLOP/s: (bf16/fp16 tensor cores with fp32 accumulate, fp32 without tensor cores).
# Vendor datasheets / architecture whitepapers; most specific names first.
GPU_PEAK_FLOPS: list[tuple[str, float, float]] = [
    ("H200", 989.4e12, 66.9e12),
    ("H100 PCIe", 756.0e12, 51.2e12),
    ("H100", 989.4e12, 66.9e12),  # SXM / HBM3
    ("A100", 312.0e12, 19.5e12),
    ("L40S", 362.0e12, 91.6e12),
    ("L4", 121.0e12, 30.3e12),
    ("A10G", 70.0e12, 31.2e12),
    ("RTX 4090", 165.2e12, 82.6e12),
    ("RTX 4080", 97.5e12, 48.7e12),
    ("RTX 4070 Ti", 80.2e12, 40.1e12),
    ("RTX 4070", 58.3e12, 29.1e12),
    ("RTX 3090", 71.0e12, 35.6e12),
    ("RTX 3080", 59.5e12, 29.8e12),
    ("V100", 125.0e12, 15.7e12),
    ("T4", 65.0e12, 8.1e12),
]


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu", "cuda", "cuda:1", "mps"
    device_type: str  # "cpu" | "cuda" | "mps"
    dtype: str  # "float32" | "bfloat16" | "float16"

    @property
    def torch_dtype(self) -> torch.dtype:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[self.dtype]


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
    for key, half, single in GPU_PEAK_FLOPS:
        if key.lower() in name.lower():
            return single if dtype == "float32" else half
    return None


def measure_cpu_matmul_flops(size: int = 1024, repeats: int = 5) -> float:
    """Best fp32 matmul rate over a few square products: the CPU's practical dense peak."""
    # A private generator: measuring must not move the global RNG that a resumed run just restored.
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen)
    b = torch.randn(size, size, generator=gen)
    torch.mm(a, b)  # warm up threads and caches
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best


def peak_flops(runtime: Runtime, override: float = 0.0) -> tuple[float | None, str]:
    """(peak FLOP/s or None, where the figure came from)."""
    if override > 0:
        return override, "config peak_flops"
    if runtime.device_type == "cuda":
        name = torch.cuda.get_device_name(runtime.device)
        peak = gpu_peak_flops(name, runtime.dtype)
        if peak is None:
            return None, f"unknown GPU {name!r}: set peak_flops for MFU"
        return peak, f"{name} dense {runtime.dtype} datasheet"
    if runtime.device_type == "cpu":
        return measure_cpu_matmul_flops(), "measured fp32 matmul peak"
    return None, f"no peak figure for {runtime.device_type}: set peak_flops for MFU"


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
