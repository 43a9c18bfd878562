"""Checkpoint folders that are either complete or absent.

A checkpoint is written under ``checkpoint-N.tmp`` and renamed to ``checkpoint-N`` only
after every file, ``trainer_state.json`` last, is on disk; a rename within one folder is
atomic, so a kill at any moment leaves either the finished folder or a ``.tmp`` leftover
that resuming ignores and deletes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / f"checkpoint-{step}"


def temporary_dir(final: Path) -> Path:
    return final.with_name(final.name + ".tmp")


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Finished checkpoints in ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in root.iterdir()
        if (match := _NAME.match(path.name)) and (path / STATE_FILE).is_file()
    ]
    return [path for _, path in sorted(found)]


def resolve_resume(resume: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint ``resume`` names: ``None``; ``'latest'`` (``None`` when there is no
    checkpoint yet, so the same command starts or continues a run); or a folder."""
    if resume is None:
        return None
    if resume == "latest":
        found = complete_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise ValueError(
            f"resume={resume!r} is not a complete checkpoint folder (no {STATE_FILE}); "
            "use 'latest' or a checkpoint-N folder"
        )
    return path


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE_FILE).read_text())


def remove_partial(output_dir: str | Path) -> None:
    """Delete ``.tmp`` leftovers of checkpoints whose writing was interrupted."""
    root = Path(output_dir)
    if root.is_dir():
        for path in root.glob("checkpoint-*.tmp"):
            shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finalize(temporary: Path, final: Path, state: dict[str, Any]) -> None:
    """Write ``state`` last, then publish ``temporary`` as ``final`` in one rename.

    A finished checkpoint of the same step (a run that resumed from an older one) is
    replaced; it is moved aside first because a folder cannot be renamed onto another."""
    state_path = temporary / STATE_FILE
    with open(state_path, "w") as handle:
        json.dump(state, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    for path in temporary.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    if final.exists():
        stale = final.with_name(final.name + ".old.tmp")
        os.rename(final, stale)
        shutil.rmtree(stale)
    os.rename(temporary, final)
    _fsync_dir(final.parent)


def prune(output_dir: str | Path, keep: int | None) -> None:
    """Delete all but the ``keep`` newest complete checkpoints."""
    if keep is None:
        return
    for path in complete_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(path)
