"""Checkpoint folders that are either complete or absent.

A checkpoint is written under ``checkpoint-N.tmp`` and renamed to ``checkpoint-N`` only
after every file, ``trainer_state.json`` last, is on disk; a rename within one folder is
atomic, so a kill at any moment leaves either the finished folder or a ``.tmp`` leftover
that resuming ignores and deletes.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from ..files import fsync, replace

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
    """Delete the ``.tmp`` leftovers of checkpoints (and of other atomic writes, hidden
    ``.NAME.*.tmp``) whose writing was interrupted."""
    root = Path(output_dir)
    if root.is_dir():
        for path in [*root.glob("checkpoint-*.tmp"), *root.glob(".*.tmp")]:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def check_output_dir(output_dir: str | Path, resume: str | None, overwrite: bool) -> None:
    """Refuse a run that would clobber what ``output_dir`` holds: a non-empty folder needs
    ``resume`` (continuing the run there) or ``overwrite`` (replacing it), and resuming from
    a checkpoint older than the folder's newest would overwrite and prune the newer ones."""
    root = Path(output_dir)
    if root.exists() and not root.is_dir():
        raise ValueError(f"output_dir={str(output_dir)!r} is a file; give a folder")
    if resume is not None and overwrite:
        raise ValueError("pass resume (continue the run in output_dir) or overwrite (replace it), not both")
    if overwrite or not root.is_dir() or not any(root.iterdir()):
        return
    found = complete_checkpoints(root)
    is_run = bool(found) or (root / "config.yaml").is_file()
    if resume is None or (resume == "latest" and not is_run):
        held = f"an earlier run (newest checkpoint {found[-1].name})" if found else "files"
        raise ValueError(
            f"output_dir={str(output_dir)!r} already holds {held}; continue it with --resume latest, choose a new "
            "folder, or pass --overwrite to replace it"
        )
    if resume != "latest" and found and Path(resume).resolve().parent == root.resolve():
        step = read_state(Path(resume))["global_step"]
        newer = [path.name for path in found if read_state(path)["global_step"] > step]
        if newer:
            raise ValueError(
                f"resume={resume!r} is older than {newer} in output_dir, which the run would overwrite and prune; "
                "resume from latest, or move the newer checkpoints away"
            )


def clear(output_dir: str | Path) -> None:
    """Empty ``output_dir`` (``overwrite``: the old run is replaced, not merged)."""
    root = Path(output_dir)
    if root.is_dir():
        for path in root.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def finalize(temporary: Path, final: Path, state: dict[str, Any]) -> None:
    """Write ``state`` last, then publish ``temporary`` as ``final`` in one rename.

    A finished checkpoint of the same step (a run that resumed from an older one) is
    replaced; it is moved aside first because a folder cannot be renamed onto another."""
    (temporary / STATE_FILE).write_text(json.dumps(state, indent=2))
    for path in temporary.rglob("*"):
        if path.is_file():
            fsync(path)
    replace(temporary, final)


def prune(output_dir: str | Path, keep: int | None) -> None:
    """Delete all but the ``keep`` newest complete checkpoints."""
    if keep is None:
        return
    for path in complete_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(path)
