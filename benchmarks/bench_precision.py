"""fp32 against bf16 autocast on the shipped shapes-tiny model: seconds per clip and the
pixel-scored accuracy of ``lumiere eval``, to choose the pipelines' precision default.

    python -m benchmarks.bench_precision [--prompts 64] [--repeats 3] [--part both|timing|accuracy]

Timing: one batch of 8 prompts (25 DDIM steps, 16 frames, 32x32, guidance 3), fp32 and
bf16 interleaved ``--repeats`` times, median seconds per clip and their ratio. Accuracy:
the eval prompt set (half unseen combinations) generated in each precision from the same
noise, scored from the pixels (no per-frame baseline), and the largest pixel difference
between the two precisions' clips. On a CPU without native bf16 kernels the "bf16" rows
run in fp32 (autocast is then a no-op), which the report says.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lumiere import LumierePipeline
from lumiere.assets import default_model_dir
from lumiere.eval.shapes import generate, prompt_set, score_cases
from lumiere.performance import fast_autocast_dtype
from lumiere.recipes.shapes_tiny import SAMPLING

from .common import median, save

PRECISIONS = {"fp32": False, "bf16_autocast": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=("both", "timing", "accuracy"), default="both")
    args = parser.parse_args()
    pipe = LumierePipeline.from_pretrained(default_model_dir(), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    native = fast_autocast_dtype("cpu") is not None
    report = {"native_bf16": native, "steps": SAMPLING["steps"], "guidance": SAMPLING["guidance"], "frames": 16}
    cases = prompt_set(args.prompts, 0)
    settings = dict(num_frames=16, steps=SAMPLING["steps"], guidance=SAMPLING["guidance"])

    if args.part in ("both", "timing"):
        seconds = {name: [] for name in PRECISIONS}
        generate(pipe, cases[:8], **settings)  # warm-up
        for _ in range(args.repeats):
            for name, autocast in PRECISIONS.items():
                start = time.perf_counter()
                generate(pipe, cases[:8], **settings, autocast=autocast)
                seconds[name].append((time.perf_counter() - start) / 8)
        report["seconds_per_clip"] = {name: median(values) for name, values in seconds.items()}
        report["bf16_over_fp32_time"] = report["seconds_per_clip"]["bf16_autocast"] / report["seconds_per_clip"]["fp32"]
        print(report["seconds_per_clip"], f"ratio {report['bf16_over_fp32_time']:.2f}", flush=True)

    if args.part in ("both", "accuracy"):
        clips = {}
        for name, autocast in PRECISIONS.items():
            clips[name] = generate(pipe, cases, **settings, autocast=autocast)
            report[name] = score_cases(cases, clips[name])
            print(name, {split: report[name][split] for split in ("seen", "unseen")}, flush=True)
        difference = [np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(*clips.values())]
        report["max_pixel_difference_uint8"] = int(max(difference))
        report["mean_pixel_difference_uint8"] = float(
            np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(*clips.values())])
        )
        for name in PRECISIONS:
            del report[name]["clips"]
    print(save(f"precision_{args.part}", report))


if __name__ == "__main__":
    main()
