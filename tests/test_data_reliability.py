"""Tests for VideoFolderDataset's per-file PyAV fallback: clips that decord 0.6 mis-decodes
(dmlc/decord#336) are read with PyAV under backend "auto", and refused under "decord"."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import sys
from pathlib import Path

import decord
import numpy as np
import pytest
import torch

from lumiere.data import HELD_OUT, VideoFolderDataset, render_clip, sample_specs, video_folder, write_dataset

pytestmark = pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="PyAV is not installed")

# 16, 24 and 48 px are widths decord 0.6 mis-decodes, 32 one it reads right.
SIZES = (16, 24, 32, 48)
NUM_CLIPS, NUM_FRAMES = 2, 4


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("sizes")
    return {size: write_dataset(root / f"{size}px", NUM_CLIPS, num_frames=NUM_FRAMES, size=size) for size in SIZES}


def _decord_reads_right(path: Path, size: int) -> bool:
    """Whether decord by itself returns the clip as uint8 ``(F, size, size, 3)``, one frame
    and all frames at once: the dataset's judgement, made without it."""
    try:
        reader = decord.VideoReader(str(path), num_threads=1)
        first, clip = reader[0].asnumpy(), reader.get_batch(list(range(NUM_FRAMES))).asnumpy()
    except decord.DECORDError:
        return False
    return first.shape == (size, size, 3) and clip.shape == (NUM_FRAMES, size, size, 3)


def _levels(pixels: torch.Tensor) -> np.ndarray:
    """``(3, F, H, W)`` in [-1, 1] -> ``(F, H, W, 3)`` levels out of 255."""
    return ((pixels + 1) * 127.5).permute(1, 2, 3, 0).numpy()


def _warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "lumiere.data"]


@pytest.mark.parametrize("size", SIZES)
def test_auto_backend_reads_every_clip_right_whatever_its_size(folders, size, caplog):
    root = folders[size]
    with caplog.at_level(logging.WARNING, logger="lumiere.data"):
        dataset = VideoFolderDataset(root, NUM_FRAMES, size)
        reference = VideoFolderDataset(root, NUM_FRAMES, size, backend="pyav")
        items = [dataset[index] for index in range(len(dataset))] + [dataset[0]]  # a second read warns no more
    files = sorted(path.name for path in root.glob("*.mp4"))
    misread = {name for name in files if not _decord_reads_right(root / name, size)}
    assert dataset.backend == "decord" and set(dataset.fallbacks) == misread
    assert all(reason.startswith("decord ") for reason in dataset.fallbacks.values())
    warned = _warnings(caplog)
    assert len(warned) == len(misread) and all(" with PyAV: decord " in message for message in warned)
    assert len(dataset) == NUM_CLIPS and dataset.skipped == {}

    for index, spec in enumerate(sample_specs(NUM_CLIPS, seed=0, exclude=HELD_OUT)):
        pixels = items[index]["pixel_values"]
        assert pixels.shape == (3, NUM_FRAMES, size, size) and pixels.dtype == torch.float32
        # decord and PyAV convert YUV to RGB alike; a file read by PyAV in both is identical.
        np.testing.assert_allclose(_levels(pixels), _levels(reference[index]["pixel_values"]), atol=1.01)
        error = np.abs(_levels(pixels) - render_clip(spec, NUM_FRAMES, size))
        # H.264 halves the colour resolution, which blurs edges: measured mean <= 2.1 and
        # 90th percentile <= 5 levels, largest at 16 px where edges are most of the frame.
        assert error.mean() < 3.0 and np.quantile(error, 0.9) < 8


def test_decord_backend_skips_misread_clips_instead_of_returning_wrong_pixels(folders, tmp_path):
    if _decord_reads_right(folders[16] / "00000.mp4", 16):
        pytest.skip("this decord reads 16 px clips right (dmlc/decord#336 fixed)")
    root = tmp_path / "mixed"
    root.mkdir()
    shutil.copy(folders[16] / "00000.mp4", root / "16px.mp4")
    shutil.copy(folders[32] / "00000.mp4", root / "32px.mp4")
    (root / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": name, "text": name}) + "\n" for name in ("16px.mp4", "32px.mp4"))
    )
    dataset = VideoFolderDataset(root, NUM_FRAMES, 16, backend="decord")
    assert len(dataset) == 1 and dataset.fallbacks == {} and list(dataset.skipped) == ["16px.mp4"]
    assert dataset.skipped["16px.mp4"].startswith("unreadable: decord returned shape (1, 16, 16, ")
    assert dataset.skipped["16px.mp4"].endswith("expected (1, 16, 16, 3) uint8")
    assert dataset[0]["text"] == "32px.mp4"


def test_auto_backend_without_pyav_skips_misread_clips(folders, monkeypatch):
    if _decord_reads_right(folders[16] / "00000.mp4", 16):
        pytest.skip("this decord reads 16 px clips right (dmlc/decord#336 fixed)")
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` fail
    with pytest.raises(ValueError, match=r"no usable videos .* \(2 unreadable\)"):
        VideoFolderDataset(folders[16], NUM_FRAMES, 16)


_real_read = video_folder._DecordReader.read


def _six_channels(self, path: Path, indices: list[int]) -> np.ndarray:
    """dmlc/decord#336's symptom on a clip decord opens fine: rows padded into extra channels."""
    frames = _real_read(self, path, indices)
    return np.concatenate([frames, frames], axis=-1)


def _raises(self, path: Path, indices: list[int]) -> np.ndarray:
    raise decord.DECORDError("Check failed: from_size == to_size (1536 vs. 768)\nstack trace")


SIX_CHANNELS = "decord returned shape (4, 32, 32, 6) uint8, expected (4, 32, 32, 3) uint8"


@pytest.mark.parametrize(
    "broken_read, reason, skip_reason",
    [
        (_six_channels, SIX_CHANNELS, SIX_CHANNELS),
        (_raises, "decord failed: Check failed: from_size == to_size (1536 vs. 768)", "Check failed: from_size"),
    ],
    ids=["wrong-shape", "raises"],
)
def test_a_clip_decord_misreads_in_training_is_read_with_pyav_from_then_on(
    folders, broken_read, reason, skip_reason, monkeypatch, caplog
):
    root = folders[32]
    dataset = VideoFolderDataset(root, NUM_FRAMES, 32)
    explicit = VideoFolderDataset(root, NUM_FRAMES, 32, backend="decord")
    expected = dataset[0]["pixel_values"]
    assert dataset.fallbacks == {}
    monkeypatch.setattr(video_folder._DecordReader, "read", broken_read)
    with caplog.at_level(logging.WARNING, logger="lumiere.data"):
        for _ in range(2):
            torch.testing.assert_close(dataset[0]["pixel_values"], expected, atol=1.01 / 127.5, rtol=0)
    assert dataset.fallbacks == {"00000.mp4": reason}
    assert _warnings(caplog) == [f"read {root / '00000.mp4'} with PyAV: {reason}"]
    # Named explicitly, decord is never replaced: its failures skip each file, never give pixels.
    with pytest.raises(RuntimeError, match="every file in .* failed to decode"):
        explicit[0]
    assert sorted(explicit.skipped) == ["00000.mp4", "00001.mp4"]
    assert all(why.startswith(f"decoding failed: {skip_reason}") for why in explicit.skipped.values())
