"""How fast can the temporal layers learn to read a direction word? With and without
spatial positions in the temporal attention, side by side in one run.

    python -m benchmarks.learn_direction [--model lumiere/assets/shapes-tiny] [--steps 150]

Both settings start from the same model (by default the shipped one; only its temporal
layers train) and fit the same four clips: one red circle that starts in the centre and
moves right, left, down or up, each captioned with its direction. Training draws
timesteps in [850, 999], where the noisy input barely shows where the object is, so only
the direction word tells the clips apart. Every ``--every`` steps, the one-step estimate
of the clean clip at t = 950 (fixed noise) is prompted with the true and with the
opposite direction word; the table gives the object's displacement along the true
direction (first to last frame, pixels, :func:`lumiere.eval.direction_word.displacement`).
A model that reads the word moves the object along the true direction and not along the
opposite one. This is a fit to four clips, a test of what the architecture can learn
quickly, not of generalization. Takes ~6 minutes per setting on 2 CPU cores at 150 steps.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lumiere import LumierePipeline, SpaceTimeUNet
from lumiere.assets import default_model_dir
from lumiere.codec import encode_text, pixels_from_frames
from lumiere.data.shapes import ClipSpec, caption, render_clip
from lumiere.eval.direction_word import OPPOSITE, displacement
from lumiere.pipelines.sampling import predicted_original

MOVES = {
    "moving right": (0.35, 0.0),
    "moving left": (-0.35, 0.0),
    "moving down": (0.0, 0.35),
    "moving up": (0.0, -0.35),
}


def four_clips(size: int = 32, frames: int = 16) -> tuple[torch.Tensor, list[ClipSpec]]:
    """``(4, 3, F, H, W)`` clips in [-1, 1] and their specs."""
    specs = [ClipSpec("circle", "red", motion, start=(0.5, 0.5), displacement=d) for motion, d in MOVES.items()]
    stride = 2
    clips = [render_clip(spec, frames * stride, size)[::stride] for spec in specs]
    return pixels_from_frames(np.stack(clips)), specs


def run(
    pipe: LumierePipeline, unet: SpaceTimeUNet, steps: int, every: int, lr: float
) -> list[tuple[int, float, float]]:
    """``(step, true-word displacement, opposite-word displacement)`` every ``every`` steps."""
    clean, specs = four_clips()
    motions = [spec.motion for spec in specs]
    device = torch.device("cpu")
    true_text = encode_text(pipe.text_encoder, pipe.tokenizer, [caption(spec) for spec in specs], device)
    opposite = [caption(spec).replace(spec.motion, OPPOSITE[spec.motion]) for spec in specs]
    opposite_text = encode_text(pipe.text_encoder, pipe.tokenizer, opposite, device)
    scheduler = pipe.scheduler
    probe_t = torch.full((len(specs),), 950)
    probe_noisy = scheduler.add_noise(
        clean, torch.randn(clean.shape, generator=torch.Generator().manual_seed(123)), probe_t
    )

    parameters = list(unet.temporal_parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(1)
    rows = []
    for step in range(steps + 1):
        if step % every == 0:
            with torch.no_grad():
                moved = [
                    displacement(
                        predicted_original(scheduler, probe_noisy, unet(probe_noisy, probe_t, text).sample, probe_t),
                        motions,
                    )
                    .mean()
                    .item()
                    for text in (true_text, opposite_text)
                ]
            rows.append((step, *moved))
            print(f"step {step}: true word {moved[0]:+.2f} px, opposite word {moved[1]:+.2f} px", flush=True)
        if step == steps:
            break
        timesteps = torch.randint(850, 1000, (len(specs),), generator=generator)
        noise = torch.randn(clean.shape, generator=generator)
        output = unet(scheduler.add_noise(clean, noise, timesteps), timesteps, true_text).sample
        loss = (output - scheduler.get_velocity(clean, noise, timesteps)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="Lumiere pipeline folder (default: the shipped model)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    pipe = LumierePipeline.from_pretrained(args.model or default_model_dir(), dtype=torch.float32)
    if pipe.scheduler.config.prediction_type != "v_prediction":
        raise ValueError(
            f"--model must predict v (the loss here is on v); got {pipe.scheduler.config.prediction_type!r}"
        )
    folder = pipe.unet.config._name_or_path
    results = {}
    for spatial in (False, True):
        print(f"temporal_attention_spatial_positions={spatial}")
        torch.manual_seed(0)
        unet = SpaceTimeUNet.from_config(pipe.unet.config, temporal_attention_spatial_positions=spatial)
        unet.load_state_dict(pipe.unet.state_dict())
        unet.freeze_spatial_layers()
        results[spatial] = run(pipe, unet.float(), args.steps, args.every, args.lr)
    print(
        f"\nmodel {folder}; displacement along the true direction, px (clean clips "
        f"{displacement(four_clips()[0], list(MOVES)).mean():+.1f})\n"
    )
    print("| step | without: true word | without: opposite word | with: true word | with: opposite word |")
    print("|---|---|---|---|---|")
    for (step, a, b), (_, c, d) in zip(results[False], results[True]):
        print(f"| {step} | {a:+.2f} | {b:+.2f} | {c:+.2f} | {d:+.2f} |")


if __name__ == "__main__":
    main()
