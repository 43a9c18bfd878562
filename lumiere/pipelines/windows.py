"""Temporal MultiDiffusion: the model on a clip longer than it can (or was trained to) take,
as the per-pixel average of its predictions on overlapping temporal windows.

Lumiere's spatial super-resolution runs this way, and so does long text-to-video here. At
every step the model runs on each window, the predictions are averaged where windows
overlap (weighted, the weights of each frame normalised to sum to one: a partition of
unity whatever the windows), and **one** scheduler step runs on the whole clip.

Why one step on the averaged prediction rather than one step per window, averaged: for a
scheduler whose step is linear in the model output at fixed latents (DDIM, Euler, DPM-Solver
and UniPC with their history kept for the whole clip), the two are the same, since every
window's latents agree on the frames they share. Averaging predictions needs no per-window
scheduler state, so multistep schedulers stay right (diffusers' panorama pipeline had to save
and restore its scheduler per view), and a stochastic step draws its noise once, at full
variance, instead of an average of independent draws that shrinks it where windows overlap.

Across processes (``distribute_windows=True`` in the pipelines, under ``accelerate launch``):
each process runs the model on its share of the windows, the predictions are gathered, and
every process averages all of them in window order, so every process holds the same clip,
the one a single process makes.

The initial noise of a windowed clip may be drawn per frame (``"independent"``) or
rescheduled as FreeNoise does (``"shuffled"``, Qiu et al., 2024, :func:`shuffle_window_noise`):
every window then starts from a permutation of the first window's noise, to make the
windows agree on what the clip shows (docs/super-resolution.md measures what it does).

Tensor layout: latents and predictions ``(B, C, F, h, w)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from accelerate import PartialState
from accelerate.utils import gather

from ..validation import check_int, check_multiple
from .sampling import Guidance

WEIGHTINGS = ("flat", "pyramid")
NOISES = ("independent", "shuffled")


def temporal_windows(
    num_frames: int, window_size: int, window_stride: int | None = None, multiple: int = 1
) -> list[slice]:
    """The windows ``[start, start + window_size)`` covering ``num_frames``: starts every
    ``window_stride`` frames (default ``window_size // 2``), and a last window aligned to the
    clip's end when the stride does not reach it exactly.

    ``multiple``: what ``window_size`` must be a multiple of (the U-Net's temporal factor).
    Each bad argument is a ValueError that names it.
    """
    check_int("num_frames", num_frames, 1)
    check_int("window_size", window_size, 1)
    check_multiple("window_size", window_size, multiple)
    if window_size > num_frames:
        raise ValueError(f"window_size={window_size} is longer than num_frames={num_frames}; it must be at most that")
    stride = max(window_size // 2, 1) if window_stride is None else window_stride
    check_int("window_stride", stride, 1)
    if stride > window_size:
        raise ValueError(
            f"window_stride={stride} is larger than window_size={window_size}, which would leave frames no window "
            "covers; it must be in [1, window_size]"
        )
    starts = list(range(0, num_frames - window_size + 1, stride))
    if starts[-1] + window_size < num_frames:
        starts.append(num_frames - window_size)
    return [slice(start, start + window_size) for start in starts]


def window_weights(window_size: int, weighting: str = "flat") -> torch.Tensor:
    """Per-frame weights ``(window_size,)`` of a window's prediction in the average:
    ``"flat"`` all one; ``"pyramid"`` rising linearly to the middle and falling to the ends
    (``min(i + 1, window_size - i)``), so that a frame is decided mostly by the windows that
    hold it near their middle. Every weight is positive, so every frame is covered."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"window_weighting={weighting!r} is not one of {list(WEIGHTINGS)}")
    if weighting == "flat":
        return torch.ones(window_size)
    position = torch.arange(window_size, dtype=torch.float32)
    return torch.minimum(position + 1, window_size - position)


def shuffle_window_noise(
    noise: torch.Tensor, windows: Sequence[slice], generator: torch.Generator | None = None
) -> torch.Tensor:
    """FreeNoise's noise rescheduling of ``noise`` ``(B, C, F, h, w)`` over ``windows``
    (:func:`temporal_windows`), as a new tensor: the frames each window adds past the one
    before it take the noise of the frames one window length earlier, in a random order
    (one order for the whole batch, drawn from ``generator``). The first window keeps its
    own noise; every later window holds a permutation of an earlier window's."""
    out = noise.clone()
    for previous, window in zip(windows, windows[1:]):
        added = window.stop - previous.stop
        order = torch.randperm(added, generator=generator, device=generator.device if generator else "cpu")
        source = previous.stop - (window.stop - window.start) + order.to(noise.device)
        out[:, :, previous.stop : window.stop] = out[:, :, source]
    return out


class TemporalMultiDiffusion:
    """A model function ``(latents, t) -> prediction`` (see :mod:`lumiere.pipelines.sampling`)
    that runs ``guidance`` on each of ``windows`` and returns the weighted per-pixel average.

    Args:
        guidance: the model function of the whole clip; each window's is
            ``guidance.windows(...)``, which cuts the per-frame inputs (a conditioning video,
            a low-resolution clip) to it. Read at every call, so a callback that replaces
            the prompt embeddings is followed.
        windows: slices of the frame axis that together cover it (:func:`temporal_windows`).
        weighting: ``"flat"`` or ``"pyramid"`` (:func:`window_weights`).
        window_batch_size: windows run through the model in one batch.
        processes: an ``accelerate.PartialState`` whose processes share the windows (each
            runs a contiguous share, predictions gathered every step); None runs them all here.
    """

    def __init__(
        self,
        guidance: Guidance,
        windows: Sequence[slice],
        weighting: str = "flat",
        window_batch_size: int = 1,
        processes: PartialState | None = None,
    ):
        check_int("window_batch_size", window_batch_size, 1)
        sizes = {window.stop - window.start for window in windows}
        if len(sizes) != 1:
            raise ValueError(f"windows must all have one size; got sizes {sorted(sizes)}")
        if processes is not None and processes.num_processes > len(windows):
            raise ValueError(
                f"{len(windows)} windows cannot be shared by {processes.num_processes} processes; use at most "
                f"{len(windows)} processes or more windows (a smaller window_stride)"
            )
        self.guidance, self.windows, self.processes = guidance, list(windows), processes
        self.weights = window_weights(sizes.pop(), weighting)
        self.window_batch_size = window_batch_size

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        pairs = self._predictions(latents, timestep)
        if self.processes is not None:
            pairs = self._gather(list(pairs))
        # Each prediction is added as it comes, so at most one window batch's predictions
        # are alive at once: what the clip adds to the memory is the running sum, not a
        # prediction per window.
        total, norm = None, torch.zeros(latents.shape[2], device=latents.device)
        weights = self.weights.to(latents.device)
        for index, prediction in pairs:
            if total is None:
                dtype = prediction.dtype
                total = prediction.new_zeros(prediction.shape[:2] + latents.shape[2:], dtype=torch.float32)
            window = self.windows[index]
            total[:, :, window] += weights.view(-1, 1, 1) * prediction.float()
            norm[window] += weights
        return total.div_(norm.view(-1, 1, 1)).to(dtype)

    def _predictions(self, latents: torch.Tensor, timestep: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
        """``(window index, prediction)`` for this process's windows, as the model makes them,
        ``window_batch_size`` windows per model call."""
        indices = self._my_windows()
        for first in range(0, len(indices), self.window_batch_size):
            batch = indices[first : first + self.window_batch_size]
            windows = [self.windows[i] for i in batch]
            output = self.guidance.windows(windows)(torch.cat([latents[:, :, w] for w in windows]), timestep)
            yield from zip(batch, output.chunk(len(batch)))

    def _my_windows(self) -> list[int]:
        everything = list(range(len(self.windows)))
        if self.processes is None:
            return everything
        with self.processes.split_between_processes(everything) as mine:
            return list(mine)

    def _gather(self, pairs: list[tuple[int, torch.Tensor]]) -> list[tuple[int, torch.Tensor]]:
        """Every process's ``(window index, prediction)`` pairs, in window order. Shares differ
        by at most one window; the shorter ones are padded (index -1) for the gather."""
        most = -(-len(self.windows) // self.processes.num_processes)
        padding = most - len(pairs)
        predictions = [prediction for _, prediction in pairs]
        stacked = torch.stack(predictions + [torch.zeros_like(predictions[0])] * padding)
        index = torch.tensor([i for i, _ in pairs] + [-1] * padding, device=stacked.device)
        every_index, every_prediction = gather(index).tolist(), gather(stacked)
        pairs = [(i, every_prediction[row]) for row, i in enumerate(every_index) if i >= 0]
        return sorted(pairs, key=lambda pair: pair[0])
