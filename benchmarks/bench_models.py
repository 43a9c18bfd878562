"""SpaceTimeUNet vs AnimateDiff-style inflation vs the bare 2D U-Net per frame.

    python -m benchmarks.bench_models [--config mid|small] [--frames 16 32 64 80] [--repeats 3]

All three models are built from the same base ``UNet2DConditionModel`` (random weights;
speed does not depend on their values):

* ``stunet``: ``SpaceTimeUNet.from_unet2d(unet)``; trains its temporal parameters. Its
  inference forward runs the spatial layers over chunks of frames (frame chunking, on by
  default); ``stunet_whole`` is the same model with chunking off, forward only (training
  steps are never chunked).
* ``animatediff``: ``UNetMotionModel.from_unet2d(unet, MotionAdapter(...))``, temporal
  attention at every level and no temporal resampling; trains its motion modules. It takes
  ``encoder_hidden_states`` repeated per frame, ``(B * F, L, D)``.
* ``per_frame_2d``: the 2D U-Net on the ``B * F`` frames as one batch, no temporal
  modelling. Its training step trains every weight (it has nothing else to train), so its
  training time is not comparable at equal trainable fraction.

For each frame count the models run interleaved (their order rotates every repeat), after
one warm-up call each; the JSON keeps every sample and the medians. A training step is
forward + MSE loss + backward of the trainable parameters.

Time and memory come from separate runs: ``--memory`` measures the peak above what was in
use before each call (``common.measure``), once per model and frame count, under an
allocator setting that returns freed memory to the OS at once; that setting slows every
allocation, so timing runs use the normal allocator.
"""

from __future__ import annotations

import argparse
import gc
import json

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

from lumiere import SpaceTimeUNet
from lumiere.models.space_time_unet import DEFAULT_FRAME_CHUNK_SIZE

from .common import count_flops, device, ensure_malloc_env, measure, median, save

CONFIGS = {
    # Latent, SD-1.5 layout at a quarter of its width: 32x32 latents (256 px with an SD VAE).
    "mid": dict(
        sample_size=32, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(64, 128, 256, 256),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=256, attention_head_dim=8, norm_num_groups=32,
    ),
    # Pixel space, 64x64, three levels: the scale of the planned embedded default (a
    # stand-in until that model exists), text width 384 as MiniLM's.
    "small": dict(
        sample_size=64, in_channels=3, out_channels=3, layers_per_block=2, block_out_channels=(32, 64, 128),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=384, attention_head_dim=8, norm_num_groups=32,
    ),
}  # fmt: skip
TEXT_TOKENS = 16


class Candidate:
    """One model under test: how to call it on a clip and which parameters it trains."""

    def __init__(self, name: str, model: torch.nn.Module):
        self.name, self.model = name, model
        self.trainable = [p for p in model.parameters() if p.requires_grad]

    def __call__(self, clip: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``clip`` ``(B, C, F, H, W)``, ``context`` ``(B, L, D)``."""
        frames = clip.shape[2]
        if self.name.startswith("stunet"):
            chunk = None if self.name == "stunet_whole" else DEFAULT_FRAME_CHUNK_SIZE
            self.model.frame_chunk_size = chunk
            return self.model(clip, 500, context).sample
        repeated = context.repeat_interleave(frames, dim=0)
        if self.name == "animatediff":
            return self.model(clip, 500, repeated).sample
        images = clip.transpose(1, 2).flatten(0, 1)  # (B * F, C, H, W)
        return self.model(images, 500, repeated).sample

    def train_step(self, clip: torch.Tensor, context: torch.Tensor) -> None:
        for parameter in self.trainable:
            parameter.grad = None
        out = self(clip, context)
        torch.nn.functional.mse_loss(out, torch.zeros_like(out)).backward()


def build(config: dict, dev: torch.device) -> list[Candidate]:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**config)
    stunet = SpaceTimeUNet.from_unet2d(unet)
    adapter = MotionAdapter(
        block_out_channels=config["block_out_channels"], motion_layers_per_block=config["layers_per_block"],
        motion_num_attention_heads=8, motion_max_seq_length=128, use_motion_mid_block=True,
    )  # fmt: skip
    animatediff = UNetMotionModel.from_unet2d(unet, adapter)
    animatediff.freeze_unet2d_params()  # trains the motion modules only, like stunet's temporal layers
    return [
        Candidate("stunet", stunet.to(dev)),
        Candidate("stunet_whole", stunet),
        Candidate("animatediff", animatediff.to(dev)),
        Candidate("per_frame_2d", unet.to(dev)),
    ]


def run(config_name: str, frame_counts: list[int], repeats: int, memory: bool, train_frames: set[int]) -> dict:
    dev = device()
    config = CONFIGS[config_name]
    candidates = build(config, dev)
    size, channels = config["sample_size"], config["in_channels"]
    report = {
        "config_name": config_name,
        "config": config,
        "repeats": repeats,
        "measured": "memory" if memory else "time",
        "params": {
            c.name: {
                "total": sum(p.numel() for p in c.model.parameters()),
                "trainable": sum(p.numel() for p in c.trainable),
            }
            for c in candidates
        },
        "results": {},
    }
    for frames in frame_counts:
        generator = torch.Generator().manual_seed(frames)
        clip = torch.randn(1, channels, frames, size, size, generator=generator).to(dev)
        context = torch.randn(1, TEXT_TOKENS, config["cross_attention_dim"], generator=generator).to(dev)
        samples = {c.name: {"forward_s": [], "forward_mib": [], "train_s": [], "train_mib": []} for c in candidates}
        flops = {}
        for c in candidates:
            with torch.no_grad():
                flops[c.name] = count_flops(lambda: c(clip, context))
                if not memory:
                    c(clip, context)  # warm-up
            if not memory and frames in train_frames and c.name != "stunet_whole":
                c.train_step(clip, context)
        for repeat in range(repeats):
            order = candidates[repeat % len(candidates) :] + candidates[: repeat % len(candidates)]
            for c in order:
                gc.collect()
                with torch.no_grad():
                    seconds, mib = measure(lambda: c(clip, context), dev)
                samples[c.name]["forward_s"].append(seconds)
                if memory:  # without the allocator setting, RSS does not track frees
                    samples[c.name]["forward_mib"].append(mib)
                if frames not in train_frames or c.name == "stunet_whole":
                    continue
                gc.collect()
                seconds, mib = measure(lambda: c.train_step(clip, context), dev)
                samples[c.name]["train_s"].append(seconds)
                if memory:
                    samples[c.name]["train_mib"].append(mib)
                for parameter in c.trainable:
                    parameter.grad = None
        row = {}
        for name, values in samples.items():
            row[name] = {key: median(series) for key, series in values.items() if series}
            row[name]["forward_gflop"] = flops[name] / 1e9
            row[name]["forward_gflops_per_s"] = flops[name] / 1e9 / row[name]["forward_s"]
            row[name]["samples"] = values
        report["results"][str(frames)] = row
        save(f"models_{config_name}" + ("_memory" if memory else ""), report)  # a later OOM keeps this
        print(
            f"{config_name} F={frames}: "
            + json.dumps({n: {k: v for k, v in r.items() if k != "samples"} for n, r in row.items()}),
            flush=True,
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), nargs="+", default=["small", "mid"])
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64, 80])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="measure peak memory (one repeat) instead of time")
    parser.add_argument(
        "--train-frames", type=int, nargs="+", default=None,
        help="frame counts at which to also measure training steps (default: all)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.memory:
        ensure_malloc_env()
    train_frames = set(args.frames if args.train_frames is None else args.train_frames)
    for config_name in args.config:
        run(config_name, args.frames, 1 if args.memory else args.repeats, args.memory, train_frames)


if __name__ == "__main__":
    main()
