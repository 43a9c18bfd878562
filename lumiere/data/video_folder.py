"""Training sets read from Hugging Face-style folders of captioned clips or images.

A folder holds the media files and ``metadata.jsonl``, one JSON object per line naming a
file (relative to the folder) and its caption; other keys are ignored::

    {"file_name": "00000.mp4", "text": "a red circle moving right"}

Bad files never stop training. Each file is opened when the dataset is built; missing,
unreadable and (for clips) too short files are skipped, and one that fails to decode later
is replaced by the next good item. Each skipped file gets one warning on the
``lumiere.data`` logger and an entry in ``dataset.skipped`` (file name -> reason). With a
multi-worker ``DataLoader``, each worker keeps its own ``skipped`` for decode failures.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..validation import check_fps, check_int, frame_size

logger = logging.getLogger("lumiere.data")

METADATA_FILE = "metadata.jsonl"
BACKENDS = ("auto", "decord", "pyav")


class _Item(NamedTuple):
    file_name: str
    text: str
    info: Any  # what the subclass's _probe returned


class _Unusable(Exception):
    """A file the dataset cannot use; ``kind`` groups reasons in the summary."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def _first_line(error: Exception) -> str:
    # decord's messages carry a C++ stack trace after the first line.
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def _read_metadata(root: Path) -> list[tuple[str, str]]:
    """``(file_name, text)`` per line of ``root/metadata.jsonl``."""
    if not root.is_dir():
        raise ValueError(f"root {str(root)!r} is not a directory")
    path = root / METADATA_FILE
    if not path.is_file():
        raise ValueError(f"{str(path)!r} not found: a dataset folder needs {METADATA_FILE}, one JSON object per file")
    entries = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                entries.append((str(record["file_name"]), str(record["text"])))
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(
                    f"{str(path)!r} line {number} must be a JSON object with 'file_name' and 'text'; "
                    f"got {line.strip()[:80]!r} ({type(error).__name__}: {error})"
                ) from None
    if not entries:
        raise ValueError(f"{str(path)!r} lists no files")
    return entries


def _resize_crop(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 ``(F, H, W, 3)`` -> float ``(F, 3, h, w)`` in [-1, 1]: scaled (bilinear,
    antialiased) until it covers ``size = (h, w)``, then centre-cropped to it."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    height, width = video.shape[-2:]
    scale = max(size[0] / height, size[1] / width)
    scaled = (max(size[0], round(height * scale)), max(size[1], round(width * scale)))
    if scaled != (height, width):  # frames already at size stay exact
        video = F.interpolate(video, size=scaled, mode="bilinear", antialias=True, align_corners=False)
    top, left = (scaled[0] - size[0]) // 2, (scaled[1] - size[1]) // 2
    video = video[..., top : top + size[0], left : left + size[1]]
    return video / 127.5 - 1.0


class _FolderDataset(Dataset):
    """Shared by the clip and image datasets: metadata, probing, skipping and fallback.

    Subclasses set ``_media`` (a plural noun for messages) and implement ``_probe(path)``
    (returns per-file info or raises :class:`_Unusable`) and ``_load(item, index)``.
    """

    _media = "files"

    def __init__(self, root: str | Path, size: int | tuple[int, int]):
        self.root = Path(root)
        self.size = frame_size(size)
        self.skipped: dict[str, str] = {}
        self._items: list[_Item] = []
        kinds: Counter[str] = Counter()
        for file_name, text in _read_metadata(self.root):
            path = self.root / file_name
            try:
                if not path.is_file():
                    raise _Unusable("missing", "no such file")
                info = self._probe(path)
            except _Unusable as reason:
                kinds[reason.kind] += 1
                self._skip(file_name, str(reason))
                continue
            self._items.append(_Item(file_name, text, info))
        if not self._items:
            total = sum(kinds.values())
            counts = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
            raise ValueError(
                f"no usable {self._media} in {str(self.root)!r}: {total} file{'s' * (total != 1)} skipped ({counts})"
            )

    def _skip(self, file_name: str, reason: str) -> None:
        self.skipped[file_name] = reason
        logger.warning("skipping %s: %s", self.root / file_name, reason)

    def _probe(self, path: Path) -> Any:
        raise NotImplementedError

    def _load(self, item: _Item, index: int) -> torch.Tensor:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        """``{"pixel_values": tensor, "text": caption}``; an item whose file fails to decode
        is recorded in ``skipped`` and replaced by the next good one."""
        if not 0 <= index < len(self._items):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self._items)} items")
        for offset in range(len(self._items)):
            item = self._items[(index + offset) % len(self._items)]
            if item.file_name in self.skipped:
                continue
            try:
                pixels = self._load(item, index)
            # Decoders raise many types (RuntimeError, DECORDError, av errors, OSError);
            # whichever it is, this file is unusable and training goes on.
            except Exception as error:
                self._skip(item.file_name, f"decoding failed: {_first_line(error)}")
                continue
            return {"pixel_values": pixels, "text": item.text}
        raise RuntimeError(f"every file in {str(self.root)!r} failed to decode; see dataset.skipped")


class _DecordReader:
    name = "decord"

    def __init__(self):
        import decord

        self._decord = decord

    def probe(self, path: Path) -> tuple[int, float]:
        """Frame count and average fps."""
        reader = self._decord.VideoReader(str(path), num_threads=1)
        return len(reader), reader.get_avg_fps()

    def read(self, path: Path, indices: list[int]) -> np.ndarray:
        """uint8 ``(len(indices), H, W, 3)``."""
        return self._decord.VideoReader(str(path), num_threads=1).get_batch(indices).asnumpy()


class _PyAVReader:
    name = "pyav"

    def __init__(self):
        import av

        self._av = av

    def probe(self, path: Path) -> tuple[int, float]:
        """Frame count and average fps, from the container header."""
        with self._av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 0)
            count = stream.frames
            if not count and stream.duration:  # some containers do not store the count
                count = round(float(stream.duration * stream.time_base) * fps)
        return count, fps

    def read(self, path: Path, indices: list[int]) -> np.ndarray:
        """uint8 ``(len(indices), H, W, 3)``, decoding from the start (clips are short)."""
        wanted, frames = set(indices), {}
        with self._av.open(str(path)) as container:
            for number, frame in enumerate(container.decode(video=0)):
                if number in wanted:
                    frames[number] = frame.to_ndarray(format="rgb24")
                if number >= indices[-1]:
                    break
        if len(frames) < len(wanted):
            raise RuntimeError(f"the stream ended before frame {indices[-1]}")
        return np.stack([frames[number] for number in indices])


def _open_backend(backend: str) -> _DecordReader | _PyAVReader:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if backend == "decord":
        return _DecordReader()
    if backend == "pyav":
        return _PyAVReader()
    try:
        return _DecordReader()
    except ImportError:
        return _PyAVReader()


class VideoFolderDataset(_FolderDataset):
    """Clips of ``num_frames`` frames from a folder of captioned videos.

    Args:
        root: folder with ``metadata.jsonl`` and the videos.
        num_frames: frames per clip.
        size: output frame size, an int for square frames or ``(H, W)``. Frames are
            scaled (bilinear, antialiased) until they cover it, then centre-cropped.
        frame_stride: take every ``frame_stride``-th frame.
        fps: instead of ``frame_stride``, the frame rate to sample at: the stride is the
            video's own fps over ``fps``, rounded, and at least 1.
        seed: with the epoch (:meth:`set_epoch`) and the item index, fixes each clip's
            random start, so a resumed run sees the same clips.
        backend: ``"decord"``, ``"pyav"``, or ``"auto"`` (decord when installed); the
            attribute ``backend`` then holds the one in use.

    Items are ``{"pixel_values": float tensor (C, F, H, W) in [-1, 1], "text": caption}``.
    A video shorter than ``(num_frames - 1) * stride + 1`` frames is skipped.
    """

    _media = "videos"

    def __init__(
        self,
        root: str | Path,
        num_frames: int,
        size: int | tuple[int, int],
        frame_stride: int = 1,
        fps: float | None = None,
        seed: int = 0,
        backend: str = "auto",
    ):
        check_int("num_frames", num_frames, 1)
        check_int("frame_stride", frame_stride, 1)
        check_int("seed", seed, 0)
        if fps is not None:
            check_fps(fps)
            if frame_stride != 1:
                raise ValueError(f"pass frame_stride or fps, not both; got frame_stride={frame_stride}, fps={fps}")
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.fps = fps
        self.seed = seed
        self.epoch = 0
        self._reader = _open_backend(backend)
        self.backend = self._reader.name
        super().__init__(root, size)

    def set_epoch(self, epoch: int) -> None:
        """Draw the clip starts of ``epoch``: call it at the start of each epoch."""
        check_int("epoch", epoch, 0)
        self.epoch = epoch

    def _probe(self, path: Path) -> tuple[int, int]:
        """``(frame count, stride)`` of a usable video."""
        try:
            length, video_fps = self._reader.probe(path)
        # Broad on purpose: anything a decoder raises on open means "unreadable".
        except Exception as error:
            raise _Unusable("unreadable", _first_line(error)) from None
        if self.fps is None:
            stride = self.frame_stride
        elif video_fps > 0:
            stride = max(1, round(video_fps / self.fps))
        else:
            raise _Unusable("unreadable", "no frame rate in the header, needed for fps")
        span = (self.num_frames - 1) * stride + 1
        if length < span:
            detail = f"{length} frames; {self.num_frames} frames at stride {stride} span {span}"
            raise _Unusable(f"shorter than {span} frames", detail)
        return length, stride

    def frame_indices(self, index: int) -> list[int]:
        """The frames item ``index`` takes from its video in the current epoch."""
        return self._clip_frames(self._items[index], index)

    def _clip_frames(self, item: _Item, index: int) -> list[int]:
        length, stride = item.info
        span = (self.num_frames - 1) * stride + 1
        # A generator of its own per (seed, epoch, index), not global RNG state, so any
        # worker and any resumed run draws the same start.
        start = int(np.random.default_rng((self.seed, self.epoch, index)).integers(length - span + 1))
        return list(range(start, start + span, stride))

    def _load(self, item: _Item, index: int) -> torch.Tensor:
        # A replacement for a broken item keeps the requested index's draw.
        frames = self._reader.read(self.root / item.file_name, self._clip_frames(item, index))
        return _resize_crop(frames, self.size).permute(1, 0, 2, 3)


class ImageFolderDataset(_FolderDataset):
    """Captioned images (PNG, JPEG, anything PIL reads) from a folder.

    Args:
        root: folder with ``metadata.jsonl`` and the images.
        size: output size, an int for square images or ``(H, W)``; images are scaled
            (bilinear, antialiased) until they cover it, then centre-cropped.

    Items are ``{"pixel_values": float tensor (C, H, W) in [-1, 1], "text": caption}``.
    """

    _media = "images"

    def _probe(self, path: Path) -> None:
        try:
            with PIL.Image.open(path) as image:
                image.verify()
        except Exception as error:  # PIL raises many types for broken files
            raise _Unusable("unreadable", _first_line(error)) from None

    def _load(self, item: _Item, index: int) -> torch.Tensor:
        with PIL.Image.open(self.root / item.file_name) as image:
            frame = np.array(image.convert("RGB"))  # a writable copy, as torch wants
        return _resize_crop(frame[None], self.size)[0]
