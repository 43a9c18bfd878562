"""Single optimizations measured in isolation, before vs after.

    python -m benchmarks.bench_ops      # writes benchmarks/results/ops.json

* temporal convolution: a ``(3, 1, 1)`` Conv3d on ``(B, C, F, H, W)`` (before) against the
  ``(3, 1)`` Conv2d on ``(B, C, F, H * W)`` that ``lumiere.models.temporal`` uses (after),
  with the layout changes each needs, at shapes of the ``mid`` benchmark's levels;
* gradient checkpointing: a SpaceTimeUNet training step (``mid``, 32 frames) with and
  without it: time and peak memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from einops import rearrange

from lumiere import SpaceTimeUNet

from .bench_models import CONFIGS
from .common import device, ensure_malloc_env, measure, median, save

REPEATS = 5


def temporal_conv_layouts(dev: torch.device) -> dict:
    results = {}
    for batch, frames, channels, size in [(2, 80, 64, 32), (2, 40, 128, 16), (2, 20, 256, 8)]:
        hidden = torch.randn(batch * frames, channels, size, size, device=dev)
        weight = torch.randn(channels, channels, 3, 1, 1, device=dev) * 0.01

        def conv3d():
            video = rearrange(hidden, "(b f) c h w -> b c f h w", f=frames)
            video = F.conv3d(F.pad(video, (0, 0, 0, 0, 1, 1), mode="replicate"), weight)
            return rearrange(video, "b c f h w -> (b f) c h w")

        def conv2d():
            video = rearrange(hidden, "(b f) c h w -> b c f (h w)", f=frames)
            video = F.conv2d(F.pad(video, (0, 0, 1, 1), mode="replicate"), weight[..., 0])
            return rearrange(video, "b c f (h w) -> (b f) c h w", h=size)

        assert torch.allclose(conv3d(), conv2d(), atol=1e-5)
        times = {"conv3d": [], "conv2d": []}
        for fn in (conv3d, conv2d):
            fn()
        for _ in range(REPEATS):
            times["conv3d"].append(measure(conv3d, dev)[0])
            times["conv2d"].append(measure(conv2d, dev)[0])
        key = f"B{batch}_F{frames}_C{channels}_{size}x{size}"
        results[key] = {
            "conv3d_ms": median(times["conv3d"]) * 1e3,
            "conv2d_ms": median(times["conv2d"]) * 1e3,
            "ratio": median(times["conv2d"]) / median(times["conv3d"]),
        }
        print("temporal conv", key, results[key], flush=True)
    return results


def gradient_checkpointing(dev: torch.device, frames: int = 32) -> dict:
    torch.manual_seed(0)
    config = CONFIGS["mid"]
    model = SpaceTimeUNet.from_unet2d(UNet2DConditionModel(**config)).to(dev)
    clip = torch.randn(1, 4, frames, 32, 32, device=dev)
    context = torch.randn(1, 16, config["cross_attention_dim"], device=dev)

    def step():
        model.zero_grad(set_to_none=True)
        model(clip, 500, context).sample.square().mean().backward()

    results = {}
    for enabled in (False, True):
        model.enable_gradient_checkpointing() if enabled else model.disable_gradient_checkpointing()
        step()
        samples = [measure(step, dev) for _ in range(3)]
        results["on" if enabled else "off"] = {
            "seconds": median([s for s, _ in samples]),
            "peak_mib": median([m for _, m in samples]),
        }
    results["time_ratio"] = results["on"]["seconds"] / results["off"]["seconds"]
    results["memory_ratio"] = results["on"]["peak_mib"] / results["off"]["peak_mib"]
    print("gradient checkpointing", results, flush=True)
    return results


def main() -> None:
    ensure_malloc_env()  # memory numbers below need it; times are compared within this run
    dev = device()
    print(
        save(
            "ops", {"temporal_conv": temporal_conv_layouts(dev), "gradient_checkpointing": gradient_checkpointing(dev)}
        )
    )


if __name__ == "__main__":
    main()
