"""Writing generated clips to disk: MP4, GIF and PNG contact sheets.

Every writer takes one clip in any of these forms:

* a numpy array or torch tensor of shape ``(F, H, W, C)`` with ``C`` in
  ``{1, 3}``, either floating point in ``[0, 1]`` (values outside are clipped)
  or ``uint8`` in ``[0, 255]``;
* a list or tuple of ``F`` PIL images of equal size.

Greyscale clips (``C == 1``) are written as RGB.

Every writer writes through :func:`lumiere.files.atomic_file`: to a temporary name in the
destination folder, renamed into place only when the encoder has finished without error,
so a failed or interrupted write leaves no partial file and keeps what was there. An
existing file is replaced only with ``overwrite=True``; otherwise ``OutputExistsError``.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import PIL.Image
import torch

from .files import atomic_file
from .validation import check_fps, check_int

Frames = np.ndarray | torch.Tensor | Sequence[PIL.Image.Image]

VIDEO_SUFFIXES = (".mp4", ".gif", ".png")

# Frames whose longer side is below this are enlarged in contact sheets.
_MIN_SHEET_TILE = 64
_MAX_SHEET_COLUMNS = 8


def to_uint8_frames(frames: Frames) -> np.ndarray:
    """Convert one clip to a ``(F, H, W, 3)`` uint8 array."""
    if isinstance(frames, (list, tuple)):
        frames = _pil_list_to_array(frames)
    elif isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu()
        # numpy has no bfloat16, and half precision is not worth keeping here.
        if frames.is_floating_point():
            frames = frames.float()
        frames = frames.numpy()
    elif not isinstance(frames, np.ndarray):
        raise ValueError(
            f"frames must be a numpy array, a torch tensor or a list of PIL images; got {type(frames).__name__}"
        )

    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        hint = " (pass one clip, e.g. frames[0])" if frames.ndim == 5 else ""
        raise ValueError(
            f"frames must have shape (F, H, W, C) with C in {{1, 3}}; got shape {tuple(frames.shape)}{hint}"
        )
    if min(frames.shape[:3]) == 0:
        raise ValueError(f"frames must have at least one frame and a non-empty image; got shape {tuple(frames.shape)}")

    if np.issubdtype(frames.dtype, np.floating):
        # A NaN would silently become an arbitrary byte; it usually means the
        # sampler diverged, which the caller needs to hear about.
        if not np.isfinite(frames).all():
            raise ValueError("frames contain NaN or infinite values")
        frames = np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif frames.dtype != np.uint8:
        raise ValueError(f"frames must be floating point in [0, 1] or uint8; got dtype {frames.dtype}")

    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return np.ascontiguousarray(frames)


def _pil_list_to_array(images: Sequence[PIL.Image.Image]) -> np.ndarray:
    """Stack PIL images into a ``(F, H, W, 3)`` uint8 array."""
    if len(images) == 0:
        raise ValueError("frames must contain at least one image; got an empty list")
    for i, image in enumerate(images):
        if not isinstance(image, PIL.Image.Image):
            raise ValueError(f"frames[{i}] must be a PIL image; got {type(image).__name__}")
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        raise ValueError(f"all frames must have the same size; got (width, height) sizes {sorted(sizes)}")
    return np.stack([np.asarray(image.convert("RGB")) for image in images])


def export_to_mp4(frames: Frames, path: str | Path, fps: float = 8, overwrite: bool = False) -> str:
    """Write a clip as an H.264 MP4 (yuv420p, playable in browsers and players).

    Args:
        frames: one clip, ``(F, H, W, C)`` array/tensor or list of PIL images.
        path: output file; parent directories are created.
        fps: frames per second.
        overwrite: replace an existing file.

    Returns:
        ``path`` as a string.

    yuv420p stores colour at half resolution, so H.264 needs even width and
    height. An odd height or width is padded by one row or column that repeats
    the edge pixels, so an ``(F, 15, 9, 3)`` clip is stored as ``15 + 1 = 16``
    by ``9 + 1 = 10``. Even sizes are stored exactly, without rescaling.
    The same half-resolution colour blurs colour detail finer than 2x2 pixels.

    decord 0.6 mis-decodes a few narrow stored widths (2-8, 12, 16, 24, 48 and
    72 px, dmlc/decord#336); ffmpeg and imageio read those files correctly.
    """
    check_fps(fps)
    video = to_uint8_frames(frames)

    pad_h = video.shape[1] % 2
    pad_w = video.shape[2] % 2
    if pad_h or pad_w:
        video = np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")

    with atomic_file(path, overwrite) as temporary:
        _encode_h264(video, temporary, fps, path)
    return str(path)


def _encode_h264(video: np.ndarray, path: Path, fps: float, destination: str | Path) -> None:
    """Pipe uint8 ``(F, H, W, 3)`` frames through ffmpeg into ``path``. ffmpeg's exit status
    is checked (imageio-ffmpeg's writer ignores it, so a full disk "succeeded" there); the
    error names ``destination``, the file the caller asked for."""
    height, width = video.shape[1:3]
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", repr(float(fps)), "-i", "-",
        # crf 18 is x264's customary "visually lossless" setting; clips are small.
        "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", str(path),
    ]  # fmt: skip
    result = subprocess.run(command, input=video.tobytes(), capture_output=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {result.returncode}"]
        raise OSError(f"ffmpeg could not write {str(destination)!r}: {lines[-1]}")


def export_to_gif(frames: Frames, path: str | Path, fps: float = 8, loop: int = 0, overwrite: bool = False) -> str:
    """Write a clip as an animated GIF.

    Args:
        frames: one clip, ``(F, H, W, C)`` array/tensor or list of PIL images.
        path: output file; parent directories are created.
        fps: frames per second. GIF stores delays in 10 ms steps, so the
            playback rate is approximate (8 fps is stored as 120 ms per frame).
        loop: number of repeats; 0 repeats forever.
        overwrite: replace an existing file.

    Returns:
        ``path`` as a string.

    Each frame gets its own 256-colour palette. Pillow merges consecutive
    identical frames into one longer frame, so a still clip may read back with
    fewer frames but plays for the same time.
    """
    check_fps(fps)
    check_int("loop", loop, 0)
    video = to_uint8_frames(frames)

    images = [PIL.Image.fromarray(frame) for frame in video]
    with atomic_file(path, overwrite) as temporary:
        images[0].save(
            temporary, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=loop
        )
    return str(path)


def make_contact_sheet(
    frames: Frames,
    columns: int | None = None,
    padding: int = 2,
    background: int = 255,
    scale: int | None = None,
) -> PIL.Image.Image:
    """Lay the frames of a clip out in a grid, row by row, in one RGB image.

    Args:
        frames: one clip, ``(F, H, W, C)`` array/tensor or list of PIL images.
        columns: frames per row; by default ``ceil(sqrt(F))`` capped at 8.
        padding: pixels of background between tiles and around the border.
        background: grey level 0-255 of the padding and of unused cells.
        scale: integer nearest-neighbour enlargement of each frame. By default
            frames whose longer side is under 64 px are enlarged by the smallest
            factor that brings it to at least 64 px (8x8 frames become 64x64),
            and larger frames are kept as they are.

    Returns:
        An image of width ``columns * W * scale + (columns + 1) * padding`` and
        height ``rows * H * scale + (rows + 1) * padding``, where
        ``rows = ceil(F / columns)``.
    """
    video = to_uint8_frames(frames)
    num_frames, height, width = video.shape[:3]

    if columns is None:
        columns = min(math.ceil(math.sqrt(num_frames)), _MAX_SHEET_COLUMNS)
    check_int("columns", columns, 1)
    check_int("padding", padding, 0)
    check_int("background", background, 0, 255)
    if scale is None:
        scale = max(1, math.ceil(_MIN_SHEET_TILE / max(height, width)))
    check_int("scale", scale, 1)

    if scale > 1:
        video = video.repeat(scale, axis=1).repeat(scale, axis=2)
        height, width = height * scale, width * scale

    rows = math.ceil(num_frames / columns)
    sheet = np.full(
        (rows * height + (rows + 1) * padding, columns * width + (columns + 1) * padding, 3),
        background,
        dtype=np.uint8,
    )
    for i, frame in enumerate(video):
        row, col = divmod(i, columns)
        top = padding + row * (height + padding)
        left = padding + col * (width + padding)
        sheet[top : top + height, left : left + width] = frame
    return PIL.Image.fromarray(sheet)


def save_contact_sheet(
    frames: Frames, path: str | Path, columns: int | None = None, scale: int | None = None, overwrite: bool = False
) -> str:
    """Save :func:`make_contact_sheet` of a clip (``columns`` and ``scale`` as there); the
    format follows the suffix.

    Returns:
        ``path`` as a string.
    """
    sheet = make_contact_sheet(frames, columns=columns, scale=scale)
    with atomic_file(path, overwrite) as temporary:
        sheet.save(temporary)
    return str(path)


def read_image(path: str | Path, name: str = "image", grey: bool = False) -> np.ndarray:
    """An image file as uint8 ``(H, W, 3)`` (``(H, W)`` with ``grey``); a ValueError
    naming ``name`` for a missing or unreadable file."""
    try:
        with PIL.Image.open(path) as image:
            return np.array(image.convert("L" if grey else "RGB"))
    except (OSError, PIL.UnidentifiedImageError) as error:
        raise ValueError(f"{name} {str(path)!r} cannot be read as an image: {error}") from None


def read_video(path: str | Path, name: str = "video") -> np.ndarray:
    """Every frame of a video file (mp4, gif, ...) as uint8 ``(F, H, W, 3)``; a ValueError
    naming ``name`` for a missing, unreadable or empty file."""
    import av

    try:
        with av.open(str(path)) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (OSError, av.error.FFmpegError, IndexError) as error:
        raise ValueError(f"{name} {str(path)!r} cannot be read as a video: {error}") from None
    if not frames:
        raise ValueError(f"{name} {str(path)!r} has no frames")
    return np.stack(frames)


def save_video(frames: Frames, path: str | Path, fps: float = 8, overwrite: bool = False) -> str:
    """Save a clip in the format given by the suffix of ``path``.

    ``.mp4`` and ``.gif`` write an animation at ``fps``; ``.png`` writes a
    contact sheet (``fps`` is then unused). The suffix is case-insensitive.

    Returns:
        ``path`` as a string.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".mp4":
        return export_to_mp4(frames, path, fps=fps, overwrite=overwrite)
    if suffix == ".gif":
        return export_to_gif(frames, path, fps=fps, overwrite=overwrite)
    if suffix == ".png":
        return save_contact_sheet(frames, path, overwrite=overwrite)
    raise ValueError(
        f"path suffix must be one of {', '.join(VIDEO_SUFFIXES)}; got {suffix or 'no suffix'!r} in {str(path)!r}"
    )
