"""Tests for lumiere.data.video_folder on real files: generated clips, index-coded clips,
and broken, short or missing files."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import PIL.Image
import pytest
import torch

from lumiere.data import HELD_OUT, ImageFolderDataset, VideoFolderDataset, render_clip, sample_specs, write_dataset
from lumiere.testing import read_metadata
from lumiere.video import export_to_mp4

HAVE_PYAV = importlib.util.find_spec("av") is not None
needs_pyav = pytest.mark.skipif(not HAVE_PYAV, reason="PyAV is not installed")

NUM_CLIPS, NUM_FRAMES, SIZE = 4, 16, 32
LEVEL = 7  # brightness step per frame of an index-coded clip


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "shapes", NUM_CLIPS, num_frames=NUM_FRAMES, size=SIZE)


def _write_metadata(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.jsonl").write_text(text)
    return root


def _write_folder(root: Path, files: dict[str, str]) -> Path:
    """``metadata.jsonl`` listing ``files`` (file name -> caption)."""
    return _write_metadata(root, "".join(json.dumps({"file_name": n, "text": t}) + "\n" for n, t in files.items()))


def _index_coded_clip(path: Path, num_frames: int = 32, fps: float = 16) -> None:
    """Grey clip whose frame k has brightness ``LEVEL * k``."""
    frames = np.repeat((LEVEL * np.arange(num_frames, dtype=np.uint8))[:, None, None, None], SIZE, axis=1)
    export_to_mp4(np.broadcast_to(frames, (num_frames, SIZE, SIZE, 3)), path, fps=fps)


def _decoded_indices(item: dict) -> list[int]:
    levels = (item["pixel_values"] + 1) * 127.5
    return [round(level / LEVEL) for level in levels.mean(dim=(0, 2, 3)).tolist()]


@pytest.fixture(scope="module")
def coded_dir(tmp_path_factory) -> Path:
    root = _write_folder(tmp_path_factory.mktemp("data") / "coded", {"a.mp4": "a", "b.mp4": "b"})
    for name in ("a.mp4", "b.mp4"):
        _index_coded_clip(root / name)
    return root


def _copy_clips(source: Path, root: Path, names: list[str]) -> None:
    """Copy the first ``len(names)`` clips of the ``source`` folder to ``root/names``."""
    root.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        shutil.copy(source / f"{index:05d}.mp4", root / name)


# --- reading generated clips ------------------------------------------------


@pytest.mark.parametrize("backend", ["decord", pytest.param("pyav", marks=needs_pyav)])
def test_generated_clips_read_back_close_to_the_rendered_frames(shapes_dir, backend):
    dataset = VideoFolderDataset(shapes_dir, NUM_FRAMES, SIZE, backend=backend)
    assert len(dataset) == NUM_CLIPS and dataset.skipped == {}
    for index, spec in enumerate(sample_specs(NUM_CLIPS, seed=0, exclude=HELD_OUT)):
        item = dataset[index]
        pixels = item["pixel_values"]
        assert pixels.shape == (3, NUM_FRAMES, SIZE, SIZE) and pixels.dtype == torch.float32
        assert pixels.min() >= -1 and pixels.max() <= 1
        decoded = ((pixels + 1) * 127.5).permute(1, 2, 3, 0).numpy()
        rendered = render_clip(spec, NUM_FRAMES, SIZE).astype(np.float32)
        assert np.abs(decoded - rendered).mean() < 2.0
        assert item["text"].startswith(f"a{'n' if spec.colour == 'orange' else ''} {spec.colour} {spec.shape}")


@needs_pyav
def test_auto_backend_falls_back_to_pyav_without_decord(coded_dir, monkeypatch):
    assert VideoFolderDataset(coded_dir, 4, SIZE).backend == "decord"
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` fail
    dataset = VideoFolderDataset(coded_dir, 4, SIZE)
    assert dataset.backend == "pyav"
    assert _decoded_indices(dataset[0]) == dataset.frame_indices(0)


def _pil_resized(pixels: torch.Tensor, size: int) -> np.ndarray:
    """``(3, H, W)`` in [-1, 1] -> ``(size, size, 3)`` levels, resized by Pillow (bilinear,
    which filters like antialiasing when it shrinks): an independent reference."""
    image = PIL.Image.fromarray(((pixels + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
    return np.asarray(image.resize((size, size), PIL.Image.BILINEAR), dtype=np.float32)


def _levels(pixels: torch.Tensor) -> np.ndarray:
    """``(3, ..., H, W)`` in [-1, 1] -> ``(..., H, W, 3)`` levels out of 255."""
    return ((pixels + 1) * 127.5).movedim(0, -1).numpy()


def test_frames_are_resized_and_centre_cropped(shapes_dir):
    item = VideoFolderDataset(shapes_dir, 4, (16, 24))[0]
    assert item["pixel_values"].shape == (3, 4, 16, 24)
    # 32x32 frames scale to 24x24 to cover 16x24, then lose 4 rows top and bottom.
    full = VideoFolderDataset(shapes_dir, 4, SIZE)[0]["pixel_values"]  # at their own size: as decoded
    expected = np.stack([_pil_resized(frame, 24)[4:20] for frame in full.unbind(1)])
    np.testing.assert_allclose(_levels(item["pixel_values"]), expected, atol=1.5)  # measured 1.0: rounding


# --- which frames ---------------------------------------------------------------


@pytest.mark.parametrize(
    "options, stride",
    [({}, 1), ({"frame_stride": 3}, 3), ({"fps": 8}, 2), ({"fps": 5}, 3), ({"fps": 30}, 1)],
)
def test_stride_and_fps_pick_the_right_frames(coded_dir, options, stride):
    dataset = VideoFolderDataset(coded_dir, 6, SIZE, **options)
    for index in range(len(dataset)):
        indices = dataset.frame_indices(index)
        assert np.diff(indices).tolist() == [stride] * 5
        assert _decoded_indices(dataset[index]) == indices


def test_clip_starts_depend_only_on_seed_epoch_and_index(coded_dir):
    def starts(dataset: VideoFolderDataset) -> list[int]:
        return [dataset.frame_indices(index)[0] for index in range(len(dataset))]

    first, resumed = VideoFolderDataset(coded_dir, 4, SIZE, seed=1), VideoFolderDataset(coded_dir, 4, SIZE, seed=1)
    epochs = []
    for epoch in range(4):
        first.set_epoch(epoch)
        epochs.append(starts(first))
    resumed.set_epoch(2)
    np.random.seed(123)  # global RNG state must not matter
    torch.manual_seed(123)
    assert starts(resumed) == epochs[2]
    assert _decoded_indices(resumed[1]) == resumed.frame_indices(1)
    assert len({tuple(starts) for starts in epochs}) > 1
    assert starts(VideoFolderDataset(coded_dir, 4, SIZE, seed=2)) != epochs[0]


# --- bad files --------------------------------------------------------------------


def test_broken_short_and_missing_files_are_skipped_once_and_counted(shapes_dir, tmp_path, caplog):
    root = tmp_path / "mixed"
    _copy_clips(shapes_dir, root, ["good0.mp4", "good1.mp4", "half.mp4"])
    data = (root / "half.mp4").read_bytes()
    (root / "half.mp4").write_bytes(data[: len(data) // 2])
    (root / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    export_to_mp4(render_clip(sample_specs(1)[0], 4, SIZE), root / "short.mp4")
    names = ["good0.mp4", "half.mp4", "garbage.mp4", "short.mp4", "missing.mp4", "good1.mp4"]
    _write_folder(root, {name: name for name in names})

    with caplog.at_level(logging.WARNING, logger="lumiere.data"):
        dataset = VideoFolderDataset(root, 8, SIZE)
    assert len(dataset) == 2
    assert set(dataset.skipped) == {"half.mp4", "garbage.mp4", "short.mp4", "missing.mp4"}
    assert dataset.skipped["half.mp4"].startswith("unreadable: ")
    assert dataset.skipped["garbage.mp4"].startswith("unreadable: ")
    assert dataset.skipped["short.mp4"] == "shorter than 8 frames: 4 frames; 8 frames at stride 1 span 8"
    assert dataset.skipped["missing.mp4"] == "missing: no such file"
    warned = [record.getMessage() for record in caplog.records if record.name == "lumiere.data"]
    assert len(warned) == 4 and all(str(root) in message for message in warned)
    assert [dataset[i]["text"] for i in range(2)] == ["good0.mp4", "good1.mp4"]


def test_a_file_that_breaks_after_opening_is_replaced_by_the_next(shapes_dir, tmp_path, caplog):
    root = tmp_path / "breaks"
    _copy_clips(shapes_dir, root, ["0.mp4", "1.mp4", "2.mp4"])
    _write_folder(root, {"0.mp4": "zero", "1.mp4": "one", "2.mp4": "two"})
    dataset = VideoFolderDataset(root, 8, SIZE)
    (root / "1.mp4").write_bytes(b"\0" * 100)
    with caplog.at_level(logging.WARNING, logger="lumiere.data"):
        assert dataset[1]["text"] == "two"
        assert dataset[1]["text"] == "two"
    assert list(dataset.skipped) == ["1.mp4"] and dataset.skipped["1.mp4"].startswith("decoding failed: ")
    assert len([r for r in caplog.records if r.name == "lumiere.data"]) == 1
    (root / "2.mp4").unlink()
    assert dataset[2]["text"] == "zero"  # wraps around to the first good item
    (root / "0.mp4").unlink()
    with pytest.raises(RuntimeError, match="every file in .* failed to decode"):
        dataset[0]


@needs_pyav
def test_pyav_replaces_a_clip_whose_header_is_fine_but_whose_data_is_cut(coded_dir, tmp_path):
    """The moov atom first (faststart), then cut: the header reads, the frames do not."""
    root = _write_folder(tmp_path / "cut", {"cut.mp4": "cut", "good.mp4": "good"})
    shutil.copy(coded_dir / "a.mp4", root / "good.mp4")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    command = [ffmpeg, "-loglevel", "error", "-i", str(coded_dir / "a.mp4"), "-c", "copy", "-movflags", "+faststart"]
    subprocess.run([*command, str(root / "full.mp4")], check=True)
    data = (root / "full.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    dataset = VideoFolderDataset(root, 32, SIZE, backend="pyav")
    assert len(dataset) == 2  # both headers claim 32 frames
    assert dataset[0]["text"] == "good"
    assert dataset.skipped["cut.mp4"].startswith("decoding failed: ")


def test_a_folder_of_only_bad_files_says_why(shapes_dir, tmp_path):
    root = tmp_path / "bad"
    _copy_clips(shapes_dir, root, ["short.mp4"])
    (root / "a.mp4").write_bytes(b"not a video")
    (root / "b.mp4").write_bytes(b"")
    _write_folder(root, {"a.mp4": "a", "b.mp4": "b", "short.mp4": "s"})
    message = f"no usable videos in '{root}': 3 files skipped (2 unreadable, 1 shorter than 17 frames)"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        VideoFolderDataset(root, 9, SIZE, frame_stride=2)


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda root: None, "is not a directory"),
        (lambda root: root.mkdir(), "metadata.jsonl' not found"),
        (lambda root: _write_metadata(root, "\n"), "lists no files"),
        (lambda root: _write_metadata(root, '{"text": "x"}\n'), "line 1 must be"),
    ],
)
def test_folder_and_metadata_errors_name_the_path(setup, message, tmp_path):
    root = tmp_path / "folder"
    setup(root)
    with pytest.raises(ValueError, match=message) as error:
        VideoFolderDataset(root, 4, SIZE)
    assert str(root) in str(error.value)


@pytest.mark.parametrize(
    "file_name, text, message",
    [
        ("a.mp4", None, "'text' must be a string (the caption); got null"),
        ("a.mp4", 3, "'text' must be a string (the caption); got 3"),
        ("a.mp4", ["a", "b"], """'text' must be a string (the caption); got ["a", "b"]"""),
        ("", "x", """'file_name' must be a non-empty string; got \"\""""),
        (None, "x", "'file_name' must be a non-empty string; got null"),
        (7, "x", "'file_name' must be a non-empty string; got 7"),
        ("/etc/passwd", "x", "'file_name' must be relative to the dataset folder; got '/etc/passwd'"),
        ("../x.mp4", "x", "'file_name' must name a file inside the dataset folder; got '../x.mp4', which resolves"),
        ("sub/../../x.mp4", "x", "inside the dataset folder; got 'sub/../../x.mp4'"),
        (".", "x", "inside the dataset folder; got '.'"),
        ("out.mp4", "x", "inside the dataset folder; got 'out.mp4', which resolves to"),  # a symlink out
        ("outside/a.mp4", "x", "inside the dataset folder; got 'outside/a.mp4'"),  # through a linked folder
    ],
)
def test_bad_metadata_values_name_the_file_line_and_value(file_name, text, message, coded_dir, tmp_path):
    root = tmp_path / "folder"
    lines = [{"file_name": "a.mp4", "text": "fine"}, {}, {"file_name": file_name, "text": text}]
    _write_metadata(root, "\n".join(json.dumps(line) if line else "" for line in lines) + "\n")
    shutil.copy(coded_dir / "a.mp4", root / "a.mp4")
    (root / "out.mp4").symlink_to(coded_dir / "b.mp4")
    (root / "outside").symlink_to(coded_dir, target_is_directory=True)
    with pytest.raises(ValueError) as error:
        VideoFolderDataset(root, 4, SIZE)
    assert str(error.value).startswith(f"{str(root / 'metadata.jsonl')!r} line 3: ")
    assert message in str(error.value)


def test_symlinks_and_dots_that_stay_inside_the_folder_are_fine(coded_dir, tmp_path):
    root = _write_folder(tmp_path / "folder", {"a.mp4": "a", "./inner/../alias.mp4": "alias", "inner/b.mp4": "b"})
    shutil.copy(coded_dir / "a.mp4", root / "a.mp4")
    (root / "alias.mp4").symlink_to("a.mp4")
    (root / "inner").mkdir()
    (root / "inner" / "b.mp4").symlink_to(root / "a.mp4")
    dataset = VideoFolderDataset(root, 4, SIZE)
    assert [dataset[index]["text"] for index in range(3)] == ["a", "alias", "b"] and dataset.skipped == {}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_frames": 0}, "num_frames must be an integer >= 1; got 0"),
        ({"frame_stride": 2, "fps": 8}, "pass frame_stride or fps, not both"),
        ({"backend": "opencv"}, "backend must be one of"),
        ({"size": (16, 16, 3)}, r"size must be an int or an \(H, W\) pair"),
    ],
)
def test_bad_options_are_named(options, message, coded_dir):
    with pytest.raises(ValueError, match=message):
        VideoFolderDataset(coded_dir, **{"num_frames": 4, "size": SIZE, **options})


# --- images --------------------------------------------------------------------


def test_image_folder_reads_stills_and_skips_broken_ones(tmp_path, caplog):
    root = write_dataset(tmp_path / "stills", 3, size=SIZE, images=True)
    (root / "00001.png").write_bytes(b"\x89PNG broken")
    with caplog.at_level(logging.WARNING, logger="lumiere.data"):
        dataset = ImageFolderDataset(root, 16)
    assert len(dataset) == 2 and list(dataset.skipped) == ["00001.png"]
    assert len(caplog.records) == 1
    item = dataset[0]
    pixels = item["pixel_values"]
    assert pixels.shape == (3, 16, 16) and -1 <= pixels.min() < pixels.max() <= 1
    with PIL.Image.open(root / "00000.png") as image:
        original = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1) / 127.5 - 1
    np.testing.assert_allclose(_levels(pixels), _pil_resized(original, 16), atol=1.5)  # measured 0.9
    assert item["text"] == read_metadata(root)[0]["text"]
