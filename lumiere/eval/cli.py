"""What the evaluation commands (``python -m lumiere.eval.editing`` and its siblings) share
on their command line: the sampling settings, the seed of the case set and the output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..files import write_text


def eval_parser(description: str, out: str, sampling: dict | None = None) -> argparse.ArgumentParser:
    """A parser with ``--steps``, ``--guidance`` (by default ``sampling``'s, else the shipped
    text-to-video models' evaluated settings), ``--seed``, ``--out`` (default ``out``) and
    ``--overwrite``."""
    from ..recipes.shapes_tiny import SAMPLING

    sampling = sampling or SAMPLING
    from ..cli import OneLineParser

    parser = OneLineParser(description=description)
    parser.add_argument("--steps", type=int, default=sampling["steps"])
    parser.add_argument("--guidance", type=float, default=sampling["guidance"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the case set (lumiere.eval.shapes.prompt_set)")
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--overwrite", action="store_true", help="replace the results in --out")
    return parser


def write_results(out: Path, name: str, results: dict, table: str, overwrite: bool) -> None:
    """``out/NAME.json`` (``results``) and ``out/NAME.md`` (``table``), each written
    atomically, then the table printed."""
    write_text(out / f"{name}.json", json.dumps(results, indent=1), overwrite)
    write_text(out / f"{name}.md", table + "\n", overwrite)
    print(table)
