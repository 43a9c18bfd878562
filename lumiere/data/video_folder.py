"""Training sets read from Hugging Face-style folders of captioned clips or images.

A folder holds the media files and ``metadata.jsonl``, one JSON object per line naming a
file (relative to the folder) and its caption; other keys are ignored::

    {"file_name": "00000.mp4", "text": "a red circle moving right"}

A bad metadata line is an error, not a skipped file, because it is a mistake in the
dataset's making that skipping would hide (a caption ``"None"``, a clip read from elsewhere
on disk): ``text`` must be a string, and ``file_name`` a non-empty relative path that stays
inside the folder once resolved (no ``..``, absolute paths or symlinks out of it). The
ValueError names the metadata file, the line and the value.

Bad files never stop training. Each file is opened when the dataset is built; missing,
unreadable and (for clips) too short files are skipped, and one that fails to decode later
is replaced by the next good item. Each skipped file gets one warning on the
``lumiere.data`` logger and an entry in ``dataset.skipped`` (file name -> reason).

Frames come back as uint8 ``(F, H, W, 3)`` at the stream's size or not at all: decord 0.6
garbles some frame widths (dmlc/decord#336: H.264 16, 24 or 48 px wide comes back with 6 or
4 "channels", or fails to copy). With ``backend="auto"`` a file that decord fails to open or
read, or returns in the wrong shape, is read with PyAV instead, from then on; each such file
gets one warning and an entry in ``dataset.fallbacks`` (file name -> what decord did), and
the other files keep decord. With ``backend="decord"`` a wrong shape is a decoding failure
of that file, so it is skipped. Files are tried when the dataset is built, so most
fallbacks are known then; with a multi-worker ``DataLoader``, each worker keeps its own
``skipped`` and ``fallbacks`` for what fails later.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..validation import check_fps, check_int, frame_size

logger = logging.getLogger("lumiere.data")

METADATA_FILE = "metadata.jsonl"
BACKENDS = ("auto", "decord", "pyav")

_T = TypeVar("_T")


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
    # decord's messages carry a C++ stack trace after the first line. The cap leaves room
    # for a decord and a PyAV reason in one message.
    lines = str(error).strip().splitlines()
    return lines[0][:500] if lines else type(error).__name__


def _read_metadata(root: Path) -> list[tuple[str, str]]:
    """``(file_name, text)`` per line of ``root/metadata.jsonl``; ValueError for a line that
    is not a JSON object with a string ``text`` and a ``file_name`` inside ``root``."""
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
                file_name, text = record["file_name"], record["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(
                    f"{str(path)!r} line {number} must be a JSON object with 'file_name' and 'text'; "
                    f"got {line.strip()[:80]!r} ({type(error).__name__}: {error})"
                ) from None
            where = f"{str(path)!r} line {number}"
            if not isinstance(text, str):
                raise ValueError(f"{where}: 'text' must be a string (the caption); got {json.dumps(text)[:80]}")
            _check_file_name(root, file_name, where)
            entries.append((file_name, text))
    if not entries:
        raise ValueError(f"{str(path)!r} lists no files")
    return entries


def _check_file_name(root: Path, file_name: Any, where: str) -> None:
    """Raise unless ``file_name`` is a non-empty relative path to somewhere inside ``root``,
    after following ``..`` and symlinks; ``where`` names the metadata line for the message."""
    if not isinstance(file_name, str) or not file_name:
        raise ValueError(f"{where}: 'file_name' must be a non-empty string; got {json.dumps(file_name)[:80]}")
    if Path(file_name).is_absolute():
        raise ValueError(f"{where}: 'file_name' must be relative to the dataset folder; got {file_name!r}")
    resolved = (root / file_name).resolve()
    if root.resolve() not in resolved.parents:
        raise ValueError(
            f"{where}: 'file_name' must name a file inside the dataset folder; got {file_name!r}, "
            f"which resolves to {str(resolved)!r}"
        )


def resize_crop(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
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

    Subclasses set ``_media`` (a plural noun for messages) and implement
    ``_probe(file_name, path)`` (returns per-file info or raises :class:`_Unusable`) and
    ``_load(item, index)``.
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
                info = self._probe(file_name, path)
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

    def _probe(self, file_name: str, path: Path) -> Any:
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


class _Stream(NamedTuple):
    """A video as a reader sees it when it opens it."""

    frames: int
    fps: float  # average; 0 when the container does not say
    height: int
    width: int


class _Clip(NamedTuple):
    """What :class:`VideoFolderDataset` keeps per video."""

    stream: _Stream
    stride: int


class _WrongFrames(Exception):
    """A reader returned frames of the wrong shape or type."""


def _check_frames(name: str, frames: np.ndarray, count: int, stream: _Stream) -> np.ndarray:
    """``frames`` if they are uint8 ``(count, H, W, 3)`` with ``(H, W)`` the stream's size;
    else :class:`_WrongFrames` naming reader ``name``."""
    expected = (count, stream.height, stream.width, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise _WrongFrames(f"{name} returned shape {frames.shape} {frames.dtype}, expected {expected} uint8")
    return frames


def _failure(name: str, error: Exception) -> str:
    """What reader ``name`` did wrong, for messages."""
    return str(error) if isinstance(error, _WrongFrames) else f"{name} failed: {_first_line(error)}"


class _DecordReader:
    name = "decord"

    def __init__(self):
        import decord

        self._decord = decord

    def probe(self, path: Path) -> _Stream:
        """Frame count, average fps and frame size, checking the first frame's shape."""
        reader = self._decord.VideoReader(str(path), num_threads=1)
        # decord has no call for the frame size, so it is read off the first frame;
        # dmlc/decord#336 garbles the channels (row padding) of some sizes, not the height
        # and width.
        first = reader[0].asnumpy()
        stream = _Stream(len(reader), reader.get_avg_fps(), *first.shape[:2])
        _check_frames(self.name, first[None], 1, stream)
        return stream

    def read(self, path: Path, indices: list[int]) -> np.ndarray:
        """uint8 ``(len(indices), H, W, 3)``."""
        return self._decord.VideoReader(str(path), num_threads=1).get_batch(indices).asnumpy()


class _PyAVReader:
    name = "pyav"

    def __init__(self):
        import av

        self._av = av

    def probe(self, path: Path) -> _Stream:
        """Frame count, average fps and frame size, from the container header."""
        with self._av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 0)
            count = stream.frames
            if not count and stream.duration:  # some containers do not store the count
                count = round(float(stream.duration * stream.time_base) * fps)
            return _Stream(count, fps, stream.height, stream.width)

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


_Reader = _DecordReader | _PyAVReader


def _installed(reader: type[_Reader]) -> _Reader | None:
    try:
        return reader()
    except ImportError:
        return None


def _open_backends(backend: str) -> tuple[_Reader, _PyAVReader | None]:
    """The reader for ``backend`` and the one to fall back on: PyAV, for ``"auto"`` when
    decord and PyAV are both installed."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if backend == "decord":
        return _DecordReader(), None
    if backend == "pyav":
        return _PyAVReader(), None
    readers = [reader for reader in map(_installed, (_DecordReader, _PyAVReader)) if reader is not None]
    if not readers:
        raise ImportError("backend 'auto' needs decord or PyAV (pip install decord av)")
    first, *rest = readers
    return first, (rest[0] if rest else None)


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
        backend: ``"decord"``, ``"pyav"``, or ``"auto"``: decord when installed, and PyAV
            for the files decord cannot read right when both are (see ``fallbacks``). The
            attribute ``backend`` then holds the one in use for the other files.

    Items are ``{"pixel_values": float tensor (C, F, H, W) in [-1, 1], "text": caption}``.
    A video shorter than ``(num_frames - 1) * stride + 1`` frames is skipped.

    Attributes:
        skipped: file name -> why the file is not used.
        fallbacks: file name -> what decord did with it, for the files read with PyAV
            instead (``backend="auto"`` only).
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
        self._reader, self._fallback = _open_backends(backend)
        self.backend = self._reader.name
        self.fallbacks: dict[str, str] = {}
        super().__init__(root, size)

    def set_epoch(self, epoch: int) -> None:
        """Draw the clip starts of ``epoch``: call it at the start of each epoch."""
        check_int("epoch", epoch, 0)
        self.epoch = epoch

    def _decode(self, file_name: str, call: Callable[[_Reader], _T]) -> _T:
        """``call(reader)`` with the reader of ``file_name``. A file the main reader fails on
        is tried with the fallback, if any, which then reads it from now on: the failure
        goes into ``fallbacks`` and one warning. If both fail, the error names both."""
        if file_name in self.fallbacks:
            return call(self._fallback)
        try:
            return call(self._reader)
        # Broad on purpose: decord raises DECORDError, RuntimeError and more, and wrong
        # frames raise _WrongFrames; each means "try PyAV".
        except Exception as error:
            if self._fallback is None:
                raise
            reason = _failure(self._reader.name, error)
        try:
            result = call(self._fallback)
        except Exception as error:
            raise RuntimeError(f"{reason}; {_failure(self._fallback.name, error)}") from None
        self.fallbacks[file_name] = reason
        logger.warning("read %s with PyAV: %s", self.root / file_name, reason)
        return result

    def _probe(self, file_name: str, path: Path) -> _Clip:
        """The stream and stride of a usable video."""
        try:
            stream = self._decode(file_name, lambda reader: reader.probe(path))
        # Broad on purpose: anything a decoder raises on open means "unreadable".
        except Exception as error:
            raise _Unusable("unreadable", _first_line(error)) from None
        if self.fps is None:
            stride = self.frame_stride
        elif stream.fps > 0:
            stride = max(1, round(stream.fps / self.fps))
        else:
            raise _Unusable("unreadable", "no frame rate in the header, needed for fps")
        span = (self.num_frames - 1) * stride + 1
        if stream.frames < span:
            detail = f"{stream.frames} frames; {self.num_frames} frames at stride {stride} span {span}"
            raise _Unusable(f"shorter than {span} frames", detail)
        return _Clip(stream, stride)

    def frame_indices(self, index: int) -> list[int]:
        """The frames item ``index`` takes from its video in the current epoch."""
        return self._clip_frames(self._items[index], index)

    def _clip_frames(self, item: _Item, index: int) -> list[int]:
        length, stride = item.info.stream.frames, item.info.stride
        span = (self.num_frames - 1) * stride + 1
        # A generator of its own per (seed, epoch, index), not global RNG state, so any
        # worker and any resumed run draws the same start.
        start = int(np.random.default_rng((self.seed, self.epoch, index)).integers(length - span + 1))
        return list(range(start, start + span, stride))

    def _load(self, item: _Item, index: int) -> torch.Tensor:
        # A replacement for a broken item keeps the requested index's draw.
        indices = self._clip_frames(item, index)
        path, stream = self.root / item.file_name, item.info.stream

        def read(reader: _Reader) -> np.ndarray:
            return _check_frames(reader.name, reader.read(path, indices), len(indices), stream)

        return resize_crop(self._decode(item.file_name, read), self.size).permute(1, 0, 2, 3)


class ImageFolderDataset(_FolderDataset):
    """Captioned images (PNG, JPEG, anything PIL reads) from a folder.

    Args:
        root: folder with ``metadata.jsonl`` and the images.
        size: output size, an int for square images or ``(H, W)``; images are scaled
            (bilinear, antialiased) until they cover it, then centre-cropped.

    Items are ``{"pixel_values": float tensor (C, H, W) in [-1, 1], "text": caption}``.
    """

    _media = "images"

    def _probe(self, file_name: str, path: Path) -> None:
        try:
            with PIL.Image.open(path) as image:
                image.verify()
        except Exception as error:  # PIL raises many types for broken files
            raise _Unusable("unreadable", _first_line(error)) from None

    def _load(self, item: _Item, index: int) -> torch.Tensor:
        with PIL.Image.open(self.root / item.file_name) as image:
            frame = np.array(image.convert("RGB"))  # a writable copy, as torch wants
        return resize_crop(frame[None], self.size)[0]
