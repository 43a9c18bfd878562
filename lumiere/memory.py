"""Refusing work that cannot fit in memory before it starts, with the estimate.

A call that needs more memory than the device has would otherwise allocate until the kernel
kills the process (CPU) or fail after minutes of work (CUDA). The pipelines estimate what a
call needs (the U-Net's :meth:`~lumiere.SpaceTimeUNet.estimate_forward_memory` plus the
latents and frames) and :func:`check_fits` compares it with what is available now.
"""

from __future__ import annotations

import psutil
import torch


class InsufficientMemoryError(MemoryError, ValueError):
    """The estimated memory of a call exceeds what the device has available. A ValueError
    too: the remedy is other arguments (the command line reports it as bad input)."""


def available_memory(device: torch.device | str) -> int:
    """Bytes that can be allocated now on ``device``: free CUDA memory plus what PyTorch's
    cache holds, or the system's available memory for CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return psutil.virtual_memory().available


def gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"


def check_fits(needed: int, device: torch.device | str, what: str) -> None:
    """Raise :class:`InsufficientMemoryError` when ``needed`` bytes exceed the memory
    available on ``device``; ``what`` describes the work in the message."""
    available = available_memory(device)
    if needed > available:
        raise InsufficientMemoryError(
            f"{what} needs about {gib(needed)} but {torch.device(device)} has {gib(available)} available; "
            "use fewer frames or videos or a smaller size, or pass check_memory=False (--no-check-memory) to try anyway"
        )
