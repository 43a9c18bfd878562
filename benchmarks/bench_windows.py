"""Temporal windows (MultiDiffusion) for spatial super-resolution: time and peak memory
against clip length, windows against one pass; and windows shared by two processes.

    python -m benchmarks.bench_windows [--frames 16 32 64] [--steps 2]
        # writes benchmarks/results/windows.json

The shipped ``shapes-ssr`` (32 -> 64 px) upscales random clips of each length with
``SAMPLING`` guidance: over windows of 16 frames (stride 8) and in one pass. Peak memory
is the process's resident peak above what was in use before the call (``measure``, with
the allocator returning frees at once). With ``--processes 2`` the longest clip's windows
are also shared by two processes (``accelerate launch``, gloo) and the call's wall time in
rank 0 compared with one process's, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from .common import device, ensure_malloc_env, measure, save

WINDOW, STRIDE = 16, 8


def load():
    from lumiere import LumiereSuperResolutionPipeline
    from lumiere.assets import default_model_dir

    pipe = LumiereSuperResolutionPipeline.from_pretrained(
        default_model_dir(kind="super-resolution"), dtype=torch.float32
    ).to(device())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def upscale(pipe, frames: int, steps: int, windows: bool, distribute: bool = False):
    from lumiere.recipes.shapes_ssr import SAMPLING

    low = torch.rand(frames, 3, 32, 32, generator=torch.Generator().manual_seed(frames))
    options = dict(window_size=WINDOW, window_stride=STRIDE, distribute_windows=distribute) if windows else {}
    return pipe(low, "a red circle moving right", num_inference_steps=steps, guidance_scale=SAMPLING["guidance"],
                generator=torch.Generator().manual_seed(0), output_type="pt", **options).frames  # fmt: skip


def shard(frames: int, steps: int, out: Path) -> None:
    """One process of the two-process run: time the windowed call, rank 0 writes it."""
    from accelerate import PartialState

    state = PartialState(cpu=device().type == "cpu")
    pipe = load()
    upscale(pipe, 2 * WINDOW, 1, windows=True, distribute=True)  # warm-up (3 windows: one each, and more)
    state.wait_for_everyone()
    seconds, _ = measure(lambda: upscale(pipe, frames, steps, windows=True, distribute=True), device())
    if state.is_main_process:
        out.write_text(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}))
    state.wait_for_everyone()


def two_processes(frames: int, steps: int) -> dict:
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rank0.json"
        command = [*launcher, "-m", "benchmarks.bench_windows", "--shard", str(out), "--frames", str(frames),
                   "--steps", str(steps)]  # fmt: skip
        subprocess.run(command, check=True, env={**os.environ, "ACCELERATE_USE_CPU": "1"})
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--processes", type=int, choices=(1, 2), default=2)
    parser.add_argument("--shard", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.shard is not None:
        return shard(args.frames[0], args.steps, args.shard)
    ensure_malloc_env()
    pipe = load()
    upscale(pipe, 16, 1, windows=False)  # warm-up
    rows = []
    for frames in args.frames:
        for windows in (True, False):
            seconds, peak = measure(lambda: upscale(pipe, frames, args.steps, windows), device())
            rows.append({"frames": frames, "windows": windows, "seconds_per_step": seconds / args.steps,
                         "peak_mib": peak})  # fmt: skip
            print(rows[-1], flush=True)
    report = {"window_size": WINDOW, "window_stride": STRIDE, "steps": args.steps, "rows": rows}
    if args.processes == 2:
        longest = max(args.frames)
        one, _ = measure(lambda: upscale(pipe, longest, args.steps, windows=True), device())
        report["sharding"] = {"frames": longest, "one_process_seconds": one, **{
            f"two_processes_{k}": v for k, v in two_processes(longest, args.steps).items()}}  # fmt: skip
        print(report["sharding"], flush=True)
    print(f"wrote {save('windows', report)}")


if __name__ == "__main__":
    main()
