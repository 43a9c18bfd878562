"""One process of tests/test_windows.py's two-process run (under ``accelerate launch``):
the saved pipeline sampled on temporal windows shared between the processes; each process
saves its final latents, the windows it ran and its thread count to ``OUT/rank{N}.pt``.

    python tests/windows_runner.py PIPE OUT NUM_FRAMES WINDOW_SIZE WINDOW_STRIDE
"""

import sys
from pathlib import Path

import torch
from accelerate import PartialState

from lumiere import LumierePipeline
from lumiere.pipelines.windows import TemporalMultiDiffusion


def main() -> None:
    pipe_dir, out, num_frames, window_size, window_stride = sys.argv[1:]
    state = PartialState(cpu=not torch.cuda.is_available())
    ran = []
    my_windows = TemporalMultiDiffusion._my_windows

    def recording(self):
        mine = my_windows(self)
        ran[:] = mine
        return mine

    TemporalMultiDiffusion._my_windows = recording
    pipe = LumierePipeline.from_pretrained(pipe_dir)
    pipe.set_progress_bar_config(disable=True)
    latents = pipe(
        "a red circle", num_frames=int(num_frames), num_inference_steps=3, output_type="latent",
        generator=torch.Generator().manual_seed(0), window_size=int(window_size), window_stride=int(window_stride),
        distribute_windows=True,
    ).frames  # fmt: skip
    Path(out).mkdir(exist_ok=True)
    torch.save(
        {"latents": latents, "windows": ran, "threads": torch.get_num_threads()},
        Path(out) / f"rank{state.process_index}.pt",
    )
    state.wait_for_everyone()


if __name__ == "__main__":
    main()
