"""What a 32 -> 128 px SSR would cost to train against the shipped 32 -> 64 px: the training
step of the ``shapes-ssr`` U-Net (``lumiere.recipes.shapes_ssr.UNET``) at each output size.

    python -m benchmarks.bench_ssr_size [--sizes 64 128] [--repeats 3]
        # writes benchmarks/results/ssr_size.json

Both recipe stages, at the recipe's batch sizes on random tensors: ``pretrain`` (the 2D
U-Net, every weight trained, 16 stills) and ``video`` (inflated without temporal
downsampling, temporal layers trained, 2 clips of 16 frames). One AdamW step each
(forward, MSE loss, backward, update), the sizes interleaved; medians after a warm-up
step. The same U-Net at both sizes: a 4x model would likely want another level, so
the 128 px figure is a floor.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

from lumiere import SpaceTimeUNet
from lumiere.recipes.shapes_ssr import UNET, pretrain_config, video_config

from .common import device, measure, median, save


def training_step(model: torch.nn.Module, sample: torch.Tensor, text_width: int) -> Callable[[], None]:
    """One optimiser step of ``model`` on ``sample`` (noisy clip and upsampled input on
    the channel axis), its trainable weights only."""
    batch, dev = sample.shape[0], sample.device
    context = torch.randn(batch, 16, text_width, device=dev)
    timesteps, levels = torch.randint(0, 1000, (batch,), device=dev), torch.randint(0, 250, (batch,), device=dev)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    target = torch.randn_like(sample[:, : sample.shape[1] // 2])

    def step() -> None:
        output = model(sample, timesteps, encoder_hidden_states=context, class_labels=levels).sample
        torch.nn.functional.mse_loss(output, target).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def stages(size: int, dev: torch.device) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**{**UNET, "sample_size": size}).to(dev)
    video = SpaceTimeUNet.from_unet2d(unet, temporal_downsample=False).to(dev)
    video.freeze_spatial_layers()
    channels, width = UNET["in_channels"], UNET["cross_attention_dim"]
    workdir = Path("runs")  # the configs only name folders under it; nothing is read
    stills, video_stage = pretrain_config(workdir).train_batch_size, video_config(workdir)
    clips, frames = video_stage.train_batch_size, video_stage.num_frames
    return {
        "pretrain": training_step(unet, torch.randn(stills, channels, size, size, device=dev), width),
        "video": training_step(video, torch.randn(clips, channels, frames, size, size, device=dev), width),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dev = device()
    steps = {size: stages(size, dev) for size in args.sizes}
    seconds: dict[tuple[int, str], list[float]] = {}
    for repeat in range(args.repeats + 1):
        for size, by_stage in steps.items():
            for stage, step in by_stage.items():
                elapsed = measure(step, dev)[0]
                if repeat:  # the first round warms up
                    seconds.setdefault((size, stage), []).append(elapsed)
    rows = [{"size": size, "stage": stage, "seconds_per_step": median(values), "runs": values}
            for (size, stage), values in seconds.items()]  # fmt: skip
    smallest = min(args.sizes)
    for row in rows:
        base = next(r for r in rows if r["size"] == smallest and r["stage"] == row["stage"])
        row["ratio_to_smallest"] = row["seconds_per_step"] / base["seconds_per_step"]
        print(row, flush=True)
    print(f"wrote {save('ssr_size', {'repeats': args.repeats, 'rows': rows})}")


if __name__ == "__main__":
    main()
