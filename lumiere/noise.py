"""The Gaussian noise a clip is trained and sampled with: i.i.d., or shared in part by all
frames (PYoCo's "mixed" noise, Ge et al., 2023)."""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor

from .validation import check_frame_correlation


def video_noise(
    shape: tuple[int, ...],
    generator: torch.Generator | list[torch.Generator] | None,
    frame_correlation: float = 0.0,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Unit-variance noise ``(B, C, F, H, W)`` whose frames have correlation
    ``frame_correlation``: ``sqrt(r) * shared + sqrt(1 - r) * own``, the shared part one
    draw ``(B, C, 1, H, W)`` per clip. With r > 0 every frame starts from a similar layout,
    which a model trained from independent per-frame noise never sees; train and sample
    with the same r. r = 0 draws exactly what ``randn_tensor`` draws."""
    check_frame_correlation(frame_correlation)
    noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    if frame_correlation:
        shared = randn_tensor((*shape[:2], 1, *shape[3:]), generator=generator, device=device, dtype=dtype)
        noise = frame_correlation**0.5 * shared + (1 - frame_correlation) ** 0.5 * noise
    return noise
