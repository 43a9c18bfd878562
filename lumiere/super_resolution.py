"""What a spatial super-resolution (SSR) model reads besides its noisy high-resolution input,
the same in training and sampling: the low-resolution clip, noised to an augmentation level
(Imagen's conditioning augmentation, as in diffusers' IF stage II and SD x4 upscaler), then
upsampled to the output size and concatenated on the channel axis. The level goes to the
U-Net as ``class_labels`` (a U-Net with ``class_embed_type="timestep"``), so it knows how
much to trust the input.

Training degrades its clean clips with :func:`downsample`; the pipeline takes the base
model's clips as they are.

A *residual* SSR model (``super_resolution_residual``) diffuses the difference between the
clip and its clean input upsampled (:func:`residual_base`), and the pipeline adds that base
back after sampling, as SRDiff (Li et al., 2022) does: flat regions, most of a clip, are
zero in the residual, so an under-trained model no longer draws grain over them, and a
model that predicts nothing returns the bicubic upsample. Tensors ``(B, C, F, H, W)`` or ``(B, C, H, W)``, pixels in
[-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.schedulers import SchedulerMixin
from einops import rearrange

from .validation import check_int

NUM_LEVELS = 1000  # levels index the augmentation schedule, as timesteps index the model's


def _per_frame(images: torch.Tensor, fn) -> torch.Tensor:
    if images.ndim == 4:
        return fn(images)
    frames = images.shape[2]
    out = fn(rearrange(images, "b c f h w -> (b f) c h w"))
    return rearrange(out, "(b f) c h w -> b c f h w", f=frames)


def downsample(images: torch.Tensor, scale: int) -> torch.Tensor:
    """``images`` shrunk ``scale`` times on each side by area averaging (each output pixel
    the mean of a ``scale x scale`` block): how a training clip becomes its input."""
    check_int("super_resolution_scale", scale, 1)
    height, width = images.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"a {height}x{width} clip cannot be shrunk by super_resolution_scale={scale} exactly")
    return _per_frame(images, lambda x: F.avg_pool2d(x, scale))


def upsample(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``images`` resized to ``size`` ``(H, W)`` bicubically, the low-resolution input as the
    U-Net sees it."""
    return _per_frame(images, lambda x: F.interpolate(x, size=size, mode="bicubic", align_corners=False))


def residual_base(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """What a residual SSR model's sample is added to: the clean ``low`` upsampled to ``size``."""
    return upsample(low, size)


def augment(
    low: torch.Tensor, level: torch.Tensor, scheduler: SchedulerMixin, generator: torch.Generator | None
) -> torch.Tensor:
    """``low`` noised to ``level`` ``(B,)`` (integers in ``[0, NUM_LEVELS)``) by the forward
    process of ``scheduler``'s noise schedule; level 0 is nearly clean."""
    noise = torch.randn(low.shape, generator=generator, dtype=torch.float32).to(low.device, low.dtype)
    return scheduler.add_noise(low, noise, level.to(low.device))


def conditioning(
    low: torch.Tensor,
    size: tuple[int, int],
    level: torch.Tensor,
    scheduler: SchedulerMixin,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The channels an SSR U-Net reads beside its noisy input: ``low`` augmented to
    ``level`` and upsampled to ``size``."""
    return upsample(augment(low, level, scheduler, generator), size)
