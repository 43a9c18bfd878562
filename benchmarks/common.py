"""Measurement helpers shared by the benchmarks: timing, peak memory, FLOPs, machine info.

On CUDA: CUDA events and ``torch.cuda.max_memory_allocated``. On CPU: wall time and the
process's peak resident memory (Linux ``VmHWM``, reset before each measurement through
``/proc/self/clear_refs``). For the CPU numbers to mean "memory the step needed", freed
memory must go back to the OS at once: ``ensure_malloc_env`` re-executes the script with
glibc's mmap threshold fixed at 1 MiB, so tensors above it are mmapped and unmapped on
free (smaller ones barely move the peak).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lumiere.files import write_text

RESULTS = Path(__file__).resolve().parent / "results"
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**20), "MALLOC_TRIM_THRESHOLD_": "0"}


def ensure_malloc_env() -> None:
    """Re-run this script with glibc's allocator returning large frees to the OS."""
    if sys.platform.startswith("linux") and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **MALLOC_ENV})


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(fn: Callable[[], object], dev: torch.device) -> tuple[float, float]:
    """Run ``fn`` once: ``(seconds, peak MiB above the memory in use before it)``."""
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000, (torch.cuda.max_memory_allocated() - before) / 2**20
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _rss_mib("VmRSS")
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return seconds, _rss_mib("VmHWM") - before


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call (matmuls, convolutions, attention), by torch's FLOP counter."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict:
    """What the numbers were measured on."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "device": str(device()),
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
        info["cpu"] = names[0] if names else info["cpu"]
        info["logical_cpus"] = len(names)
        info["simd"] = sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c"))
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    write_text(path, json.dumps({"machine": machine(), **payload}, indent=1), overwrite=True)
    return path
