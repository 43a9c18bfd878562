"""Few-step sampling of the shipped text-to-video model: accuracy and seconds per clip by sampler.

    python -m benchmarks.bench_few_step [--prompts 64] [--timing-repeats 3] [--settings ddim:25 unipc:8 ...]
                                        [--parts accuracy timing]

Each setting is a sampler of ``lumiere.pipelines.schedulers`` (on the model's own noise
schedule) and a step count, at the model's evaluated guidance (3.0). Accuracy: the
``lumiere eval`` scorer on its prompt set (half held-out combinations), from pixels, the
same noise for every setting. Time: a batch of 8 prompts, seconds per clip, the settings
interleaved over the repeats; in fp32, and under bf16 autocast where the CPU runs bf16
natively (``lumiere.performance``). ``--parts timing`` re-times the settings of an earlier
run and keeps its accuracies (timing wants a quiet machine; accuracy does not).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lumiere import LumierePipeline
from lumiere.assets import default_model_dir
from lumiere.eval.shapes import generate, prompt_set, score_cases
from lumiere.performance import fast_autocast_dtype
from lumiere.pipelines.schedulers import using_scheduler
from lumiere.recipes.shapes_tiny import SAMPLING

from .common import RESULTS, device, median, save

SETTINGS = ["ddim:25", "ddim:8", "dpmsolver++:8", "unipc:8", "unipc:6", "unipc:4"]
TIMING_BATCH = 8


def parse(setting: str) -> tuple[str, int]:
    name, steps = setting.split(":")
    return name, int(steps)


def seconds_per_clip(pipe: LumierePipeline, name: str, steps: int, autocast: bool) -> float:
    cases = prompt_set(TIMING_BATCH, seed=1)
    with using_scheduler(pipe, name):
        start = time.perf_counter()
        generate(pipe, cases, 16, steps, SAMPLING["guidance"], batch_size=TIMING_BATCH, autocast=autocast)
    return (time.perf_counter() - start) / TIMING_BATCH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--timing-repeats", type=int, default=3)
    parser.add_argument("--settings", nargs="+", default=SETTINGS, help="SAMPLER:STEPS")
    parser.add_argument("--parts", nargs="+", choices=("accuracy", "timing"), default=["accuracy", "timing"])
    args = parser.parse_args()
    dev = device()
    pipe = LumierePipeline.from_pretrained(default_model_dir(), dtype=torch.float32).to(dev)
    pipe.set_progress_bar_config(disable=True)
    settings = [parse(s) for s in args.settings]
    precisions = [False] + ([True] if fast_autocast_dtype(dev) is not None else [])
    report: dict = {"model": "shapes-tiny", "guidance": SAMPLING["guidance"], "prompts": args.prompts, "results": {}}
    if "accuracy" not in args.parts:
        report = json.loads((RESULTS / "few_step.json").read_text())
        report.pop("machine")
        settings = [parse(s) for s in report["results"]]

    cases = prompt_set(args.prompts, seed=0)
    for name, steps in settings if "accuracy" in args.parts else ():
        with using_scheduler(pipe, name):
            clips = generate(pipe, cases, 16, steps, SAMPLING["guidance"])
        scores = score_cases(cases, clips)
        report["results"][f"{name}:{steps}"] = {"seen": scores["seen"], "unseen": scores["unseen"], "seconds": {}}
        print(f"{name}:{steps}", {split: {k: round(scores[split][k], 3) for k in ("colour", "shape", "motion",
              "motion_direction")} for split in ("unseen", "seen")}, flush=True)  # fmt: skip
        save("few_step", report)

    if "timing" not in args.parts:
        return
    samples: dict = {(s, a): [] for s in settings for a in precisions}
    for (name, _), autocast in samples:  # warm-up
        seconds_per_clip(pipe, name, 2, autocast)
    for _ in range(args.timing_repeats):
        for (name, steps), autocast in samples:
            samples[(name, steps), autocast].append(seconds_per_clip(pipe, name, steps, autocast))
    for ((name, steps), autocast), values in samples.items():
        report["results"][f"{name}:{steps}"]["seconds"]["bf16_autocast" if autocast else "fp32"] = median(values)
        print(f"{name}:{steps} {'bf16' if autocast else 'fp32'} {median(values):.2f} s/clip", flush=True)
    print(save("few_step", report))


if __name__ == "__main__":
    main()
