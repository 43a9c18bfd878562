"""Writing files and folders so that nobody sees half of one and nothing is replaced unasked.

Every file the package writes goes through :func:`atomic_file` and every folder through
:func:`atomic_dir`: the content is written under a temporary name in the destination's own
folder, flushed to disk, and renamed into place, so a kill, a full disk or a failing encoder
at any moment leaves the destination as it was (absent, or the previous version) and a
hidden ``.NAME.*.tmp`` leftover at worst. Two writers racing for one name each publish a
whole file; the later rename wins.

The rule for existing outputs is ffmpeg's ``-n`` unless told ``-y``: an existing file, or a
folder that is not empty, is only replaced with ``overwrite=True`` (``--overwrite`` on the
command line), and then replaced whole, never merged. Without it, :class:`OutputExistsError`
is raised before any work starts, and again at publish time if the destination appeared in
between (the no-replace publish is a hard link, which fails if the name exists).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Written last when a folder's entries are replaced one by one: a pipeline folder with the
# new model_index.json has all its new components.
_INDEX_FILE = "model_index.json"


class OutputExistsError(FileExistsError, ValueError):
    """An output that exists and may not be replaced. A ValueError too: it is the caller's
    choice of path (the command line reports it as bad input, exit code 2)."""


def check_output(path: str | os.PathLike, overwrite: bool, folder: bool = False) -> Path:
    """Raise unless ``path`` may be written as a file (``folder=False``) or a folder:
    ValueError when it exists as the other kind, :class:`OutputExistsError` when it exists
    (a non-empty folder, for ``folder=True``) and ``overwrite`` is false."""
    path = Path(path)
    blocking = next((parent for parent in path.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise ValueError(f"output {str(path)!r} is inside {str(blocking)!r}, which is a file, not a folder")
    if folder:
        if path.exists() and not path.is_dir():
            raise ValueError(f"output folder {str(path)!r} is a file; choose a folder path")
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise OutputExistsError(
                f"output folder {str(path)!r} is not empty; choose a new folder or pass overwrite "
                "(--overwrite) to replace it"
            )
    else:
        if path.is_dir():
            raise ValueError(f"output {str(path)!r} is a folder; give a file name")
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{str(path)!r} exists; choose another name or pass overwrite (--overwrite)")
    return path


@contextmanager
def atomic_file(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path (same folder and suffix as ``path``, so encoders that read
    the format from the suffix work) to write; on a clean exit it is flushed and renamed
    to ``path``, on an exception deleted. Parent folders are created.

    Raises:
        ValueError: ``path`` is a folder.
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = check_output(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        fsync(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes it private
        _publish(temporary, path, overwrite)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path`` to fill; on a clean exit its files are
    flushed and it is renamed to ``path`` (an existing ``path``, empty or with ``overwrite``,
    is moved aside first and deleted after), on an exception deleted.

    Raises:
        ValueError: ``path`` is a file.
        OutputExistsError: ``path`` is a non-empty folder and ``overwrite`` is false.
    """
    path = check_output(path, overwrite, folder=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield temporary
        for file in temporary.rglob("*"):
            if file.is_file():
                fsync(file)
        os.chmod(temporary, 0o777 & ~_UMASK)
        check_output(path, overwrite, folder=True)  # it may have been filled meanwhile
        replace(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def replace_entries(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Move each entry of the folder ``source`` into ``destination`` (created if needed),
    each replacing its namesake in one rename, ``model_index.json`` last; other entries of
    ``destination`` are kept, and ``source`` is removed. This is how a pipeline is saved into
    a folder that holds more (a training run's checkpoints and logs)."""
    source, destination = Path(source), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    entries = sorted(source.iterdir(), key=lambda entry: entry.name == _INDEX_FILE)
    for entry in entries:
        replace(entry, destination / entry.name)
    source.rmdir()


def update_folder(folder: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """``write(staging)`` into a temporary folder inside ``folder``, then
    :func:`replace_entries` from it: a pipeline saved into a folder that keeps other files
    (a run's checkpoints, a model card)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".update.", suffix=".tmp"))
    try:
        write(staging)
        replace_entries(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_file(path, overwrite) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def replace(source: Path, destination: Path) -> None:
    """Rename ``source`` onto ``destination``; an existing folder there is moved aside first
    (a folder cannot be renamed onto a non-empty one) and deleted after."""
    if destination.is_dir() and not destination.is_symlink():
        aside = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".old.tmp"))
        os.replace(destination, aside)
        os.replace(source, destination)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(source, destination)
    fsync(destination.parent)


def _publish(temporary: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, path)
    else:
        try:
            os.link(temporary, path)  # fails if the name exists: no replacing, even in a race
        except FileExistsError:
            raise OutputExistsError(
                f"{str(path)!r} appeared while it was being written; choose another name or pass overwrite"
            ) from None
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            check_output(path, overwrite)  # a file system without hard links
            os.replace(temporary, path)
    fsync(path.parent)


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _umask() -> int:
    # Reading the umask means setting it; done once, at import, not while threads write.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
