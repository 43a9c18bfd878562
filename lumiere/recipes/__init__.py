"""Recipes of the models this project trains itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path


def run_stages(
    name: str, description: str, stages: Sequence[str], run: Callable[[str, Path], None], argv: Sequence[str] | None
) -> int:
    """The command line of a recipe: ``[STAGE ...] [--workdir DIR]``, the stages run in
    their order (all by default)."""
    from ..cli import OneLineParser

    parser = OneLineParser(description=description)
    parser.add_argument("stages", nargs="*", choices=stages, default=list(stages), metavar="STAGE")
    parser.add_argument("--workdir", type=Path, default=Path("runs/shapes-tiny"))
    args = parser.parse_args(argv)
    for stage in stages:
        if stage in args.stages:
            print(f"[{name}] stage {stage}", flush=True)
            run(stage, args.workdir)
    return 0
