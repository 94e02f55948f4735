"""Peak memory of a block of work: CUDA allocator statistics on GPUs, the process's peak RSS on the CPU."""

from __future__ import annotations

import ctypes
import sys
from contextlib import contextmanager

import torch

_MIB = 2**20


def _limit_malloc_cache() -> None:
    """Serve large CPU buffers with mmap so freed memory leaves the process and RSS tracks live tensors."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        except (OSError, AttributeError):
            pass


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def cpu_peak_supported() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _rss_kib("VmHWM")
        return True
    except OSError:
        return False


@contextmanager
def peak_memory(device: torch.device):
    """Yields a dict whose "mib" is set, on exit, to the peak extra memory used inside the block (None if unknown)."""
    result: dict[str, float | None] = {"mib": None}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        torch.cuda.synchronize(device)
        result["mib"] = (torch.cuda.max_memory_allocated(device) - base) / _MIB
    elif device.type == "cpu" and cpu_peak_supported():
        _limit_malloc_cache()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident set, to the current RSS
        base = _rss_kib("VmRSS")
        yield result
        result["mib"] = max(_rss_kib("VmHWM") - base, 0) * 1024 / _MIB
    else:
        yield result
