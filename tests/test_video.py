"""Tests for lumiere.video: files are written, then read back with other libraries."""

from __future__ import annotations

import decord
import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import PIL.Image
import pytest
import torch

from lumiere.video import (
    export_to_gif,
    export_to_mp4,
    make_contact_sheet,
    save_contact_sheet,
    save_video,
)


def _random_clip(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Random ``(F, H, W, 3)`` uint8 clip."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


def _gradient_clip(num_frames: int, height: int, width: int) -> np.ndarray:
    """Smooth ``(F, H, W, 3)`` float clip: red ramps along x, green along y, blue in time."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [
            np.stack([x / (width - 1), y / (height - 1), np.full(x.shape, t / num_frames)], axis=-1)
            for t in range(num_frames)
        ]
    ).astype(np.float32)


def _flat_clip(num_frames: int, height: int, width: int) -> np.ndarray:
    return np.broadcast_to(np.array([200, 80, 30], np.uint8), (num_frames, height, width, 3))


def _read_decord(path: str) -> tuple[np.ndarray, float]:
    """All frames ``(F, H, W, 3)`` uint8 and the average fps."""
    reader = decord.VideoReader(path)
    frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    return frames, reader.get_avg_fps()


def _read_ffmpeg(path: str) -> np.ndarray:
    """All frames ``(F, H, W, 3)`` uint8, decoded by the ffmpeg binary itself."""
    frames = imageio_ffmpeg.read_frames(path)
    width, height = next(frames)["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in frames])


# --- mp4 -------------------------------------------------------------------


def test_mp4_round_trip_is_close_to_the_input(tmp_path):
    # Non-square so a swapped height and width would show.
    clip = _gradient_clip(12, 48, 80)
    frames, fps = _read_decord(export_to_mp4(clip, tmp_path / "gradient.mp4", fps=8))

    assert frames.shape == (12, 48, 80, 3)
    assert fps == pytest.approx(8)
    # Measured 1.8 with crf 18 on this clip; chroma subsampling dominates.
    expected = np.round(clip * 255)
    assert np.abs(frames - expected).mean() < 3.0

    flat = _flat_clip(5, 48, 80)
    frames, _ = _read_decord(export_to_mp4(flat, tmp_path / "flat.mp4"))
    # Measured max 2: only RGB -> YUV -> RGB rounding.
    assert np.abs(frames.astype(int) - flat).max() <= 3


@pytest.mark.parametrize(("num_frames", "fps"), [(1, 8), (2, 24), (17, 7.5), (9, 30000 / 1001)])
def test_mp4_keeps_every_frame_and_the_rate(tmp_path, num_frames, fps):
    clip = _random_clip(num_frames, 32, 32)
    frames, read_fps = _read_decord(export_to_mp4(clip, tmp_path / "clip.mp4", fps=fps))

    assert frames.shape == (num_frames, 32, 32, 3)
    assert read_fps == pytest.approx(fps, rel=1e-4)
    # In order: each decoded frame is nearest its own input frame (noise compresses
    # poorly, measured 46 levels off on average, but the other frames are 73 and more).
    distance = np.abs(frames[:, None].astype(float) - clip[None]).mean(axis=(2, 3, 4))
    assert distance.argmin(axis=1).tolist() == list(range(num_frames))


def test_mp4_odd_size_is_padded_by_one_edge_row_and_column(tmp_path):
    clip = _gradient_clip(4, 33, 45)
    frames, _ = _read_decord(export_to_mp4(clip, tmp_path / "odd.mp4"))

    assert frames.shape == (4, 34, 46, 3)
    expected = np.round(clip * 255)
    assert np.abs(frames[:, :33, :45] - expected).mean() < 3.0
    # The padding repeats the last row and column rather than adding a black edge.
    assert np.abs(frames[:, 33].astype(int) - frames[:, 32]).max() <= 3
    assert np.abs(frames[:, :, 45].astype(int) - frames[:, :, 44]).max() <= 3


# decord 0.6 misreads these widths (dmlc/decord#336), so ffmpeg decodes them.
@pytest.mark.parametrize(("height", "width", "stored"), [(1, 1, (2, 2)), (8, 8, (8, 8)), (16, 16, (16, 16))])
def test_mp4_tiny_clips_encode_without_rescaling(tmp_path, height, width, stored):
    flat = _flat_clip(3, height, width)
    frames = _read_ffmpeg(export_to_mp4(flat, tmp_path / "tiny.mp4"))

    assert frames.shape == (3, *stored, 3)
    assert np.abs(frames.astype(int) - flat[0, 0]).max() <= 3


# --- gif -------------------------------------------------------------------


def test_gif_round_trip(tmp_path):
    clip = _random_clip(5, 10, 12)
    path = export_to_gif(clip, tmp_path / "clip.gif", fps=10)

    frames = iio.imread(path, index=None)
    assert frames.shape == (5, 10, 12, 3)
    # 120 pixels per frame is under 256 colours, so each palette is exact.
    np.testing.assert_array_equal(frames, clip)
    meta = iio.immeta(path)
    assert meta["duration"] == 100
    assert meta["loop"] == 0


def test_gif_single_frame_and_still_clip_keep_their_duration(tmp_path):
    single = iio.imread(export_to_gif(_random_clip(1, 6, 6), tmp_path / "one.gif"), index=None)
    assert single.shape == (1, 6, 6, 3)
    np.testing.assert_array_equal(single, _random_clip(1, 6, 6))  # 36 colours: an exact palette

    still = np.repeat(_random_clip(1, 6, 6), 4, axis=0)
    with PIL.Image.open(export_to_gif(still, tmp_path / "still.gif", fps=8)) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    # Pillow merges identical frames; four 125 ms frames stay 500 ms long.
    assert sum(durations) == 500


# --- contact sheets --------------------------------------------------------


@pytest.mark.parametrize(
    ("num_frames", "columns", "grid"),
    [
        (1, None, (1, 1)),
        (5, None, (2, 3)),
        (16, None, (4, 4)),
        (100, None, (13, 8)),  # ceil(sqrt(100)) = 10 columns, capped at 8
        (5, 2, (3, 2)),
        (3, 5, (1, 5)),
    ],
)
def test_contact_sheet_size(num_frames, columns, grid):
    height, width, padding = 64, 96, 3
    sheet = make_contact_sheet(np.zeros((num_frames, height, width, 3), np.uint8), columns=columns, padding=padding)
    rows, cols = grid
    assert sheet.size == (
        cols * width + (cols + 1) * padding,
        rows * height + (rows + 1) * padding,
    )


@pytest.mark.parametrize(
    ("height", "width", "scale", "tile"),
    [(8, 8, None, (64, 64)), (16, 40, None, (32, 80)), (64, 64, None, (64, 64)), (8, 8, 3, (24, 24))],
)
def test_contact_sheet_enlarges_small_frames_by_whole_pixels(height, width, scale, tile):
    clip = _random_clip(1, height, width)
    sheet = np.asarray(make_contact_sheet(clip, padding=0, scale=scale))

    assert sheet.shape == (*tile, 3)
    factor = tile[0] // height
    np.testing.assert_array_equal(sheet[::factor, ::factor], clip[0])
    np.testing.assert_array_equal(sheet[factor - 1 :: factor, factor - 1 :: factor], clip[0])


def test_contact_sheet_places_frames_row_by_row_on_the_background():
    clip = _random_clip(5, 64, 64)
    sheet = np.asarray(make_contact_sheet(clip, columns=3, padding=2, background=7))

    for i, frame in enumerate(clip):
        row, col = divmod(i, 3)
        top, left = 2 + row * 66, 2 + col * 66
        np.testing.assert_array_equal(sheet[top : top + 64, left : left + 64], frame)
    # The sixth cell is empty and the border is padding.
    assert (sheet[68:132, 134:198] == 7).all()
    assert (sheet[:2] == 7).all() and (sheet[:, :2] == 7).all()


def test_contact_sheet_same_for_every_input_form():
    clip = _random_clip(4, 20, 24)
    expected = np.asarray(make_contact_sheet(clip))
    forms = {
        "float numpy": clip / 255.0,
        "float32 numpy": (clip / 255.0).astype(np.float32),
        "uint8 torch": torch.from_numpy(clip),
        "float torch": torch.from_numpy(clip).float() / 255,
        "PIL list": [PIL.Image.fromarray(frame) for frame in clip],
        "PIL tuple": tuple(PIL.Image.fromarray(frame) for frame in clip),
    }
    for name, frames in forms.items():
        np.testing.assert_array_equal(np.asarray(make_contact_sheet(frames)), expected, err_msg=name)

    # bfloat16 has no numpy counterpart and only 8 significant bits.
    bf16 = np.asarray(make_contact_sheet(torch.from_numpy(clip).to(torch.bfloat16) / 255))
    assert np.abs(bf16.astype(int) - expected).max() <= 1


def test_greyscale_and_out_of_range_floats():
    grey = _random_clip(2, 8, 8)[..., :1]
    np.testing.assert_array_equal(
        np.asarray(make_contact_sheet(grey)), np.asarray(make_contact_sheet(np.repeat(grey, 3, -1)))
    )

    clip = np.array([-0.5, 0.5, 1.5], np.float32).reshape(1, 1, 3, 1)
    sheet = np.asarray(make_contact_sheet(clip, padding=0, scale=1))
    np.testing.assert_array_equal(sheet[0, :, 0], [0, 128, 255])


# --- save_video and paths --------------------------------------------------


def test_save_video_dispatches_on_suffix_and_creates_directories(tmp_path):
    clip = _random_clip(4, 32, 32)
    out = tmp_path / "a" / "b"

    mp4 = save_video(clip, out / "clip.mp4")
    gif = save_video(clip, out / "clip.GIF")
    png = save_video(clip, out / "clip.png")

    assert mp4 == str(out / "clip.mp4")
    assert _read_decord(mp4)[0].shape == (4, 32, 32, 3)
    assert iio.imread(gif, index=None).shape == (4, 32, 32, 3)
    # 4 frames -> 2x2 grid of 64x64 tiles (32 px frames are doubled), padding 2.
    assert PIL.Image.open(png).size == (2 * 64 + 3 * 2, 2 * 64 + 3 * 2)
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(png)), np.asarray(make_contact_sheet(clip)))
    # The gif holds the frames (1024 colours per frame, quantized to 256: measured 10 levels
    # off on average; the frames in reverse order are 85 off).
    assert np.abs(iio.imread(gif, index=None).astype(int) - clip).mean() < 20
    assert PIL.Image.open(save_contact_sheet(clip, out / "c" / "sheet.png", columns=4)).size == (
        4 * 64 + 5 * 2,
        64 + 2 * 2,
    )


# --- bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((4, 8, 8, 4), np.uint8), r"C in \{1, 3\}; got shape \(4, 8, 8, 4\)"),
        (np.zeros((8, 8, 3), np.uint8), r"got shape \(8, 8, 3\)"),
        (np.zeros((2, 4, 8, 8, 3), np.uint8), r"\(2, 4, 8, 8, 3\) \(pass one clip"),
        (torch.zeros(3, 4, 8, 8), r"got shape \(3, 4, 8, 8\)"),
        (np.zeros((0, 8, 8, 3), np.uint8), r"got shape \(0, 8, 8, 3\)"),
        (np.zeros((2, 8, 8, 3), np.int64), r"floating point in \[0, 1\] or uint8; got dtype int64"),
        (np.full((2, 8, 8, 3), np.nan, np.float32), "NaN"),
        ([], "empty list"),
        ([np.zeros((8, 8, 3), np.uint8)], r"frames\[0\] must be a PIL image; got ndarray"),
        ([PIL.Image.new("RGB", (8, 8)), PIL.Image.new("RGB", (8, 6))], r"\[\(8, 6\), \(8, 8\)\]"),
        ("clip.mp4", "got str"),
    ],
)
def test_bad_frames_are_rejected(frames, match):
    with pytest.raises(ValueError, match=match):
        make_contact_sheet(frames)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda clip, d: save_video(clip, d / "clip.avi"), r"one of \.mp4, \.gif, \.png; got '\.avi'"),
        (lambda clip, d: save_video(clip, d / "clip"), "got 'no suffix'"),
        (lambda clip, d: export_to_mp4(clip, d / "clip.mp4", fps=0), "fps must be .*; got 0"),
        (lambda clip, d: export_to_gif(clip, d / "clip.gif", fps=-2.0), "fps must be .*; got -2.0"),
        (lambda clip, d: export_to_gif(clip, d / "clip.gif", loop=-1), r"loop must be an integer >= 0; got -1"),
        (lambda clip, d: make_contact_sheet(clip, columns=0), "columns must be an integer >= 1; got 0"),
        (lambda clip, d: make_contact_sheet(clip, padding=-1), "padding must be an integer >= 0; got -1"),
        (lambda clip, d: make_contact_sheet(clip, background=300), r"in \[0, 255\]; got 300"),
        (lambda clip, d: make_contact_sheet(clip, scale=1.5), "scale must be an integer >= 1; got 1.5"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(_random_clip(2, 8, 8), tmp_path)
    assert not any(tmp_path.iterdir()), "nothing is written for rejected arguments"
