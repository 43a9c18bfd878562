"""Models shipped inside the package (no download): ``shapes-tiny``, the embedded default,
``shapes-tiny-edit``, its conditional sibling (built by ``lumiere.recipes.shapes_tiny_edit``),
``shapes-ssr``, its spatial super-resolution model (``lumiere.recipes.shapes_ssr``),
``shapes-tiny-fast``, shapes-tiny distilled to few steps (``lumiere.recipes.shapes_fast``),
and the styles of :data:`STYLE_DIRS` (``lumiere.recipes.shapes_style``)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "shapes-tiny"
EDIT_MODEL_DIR = Path(__file__).resolve().parent / "shapes-tiny-edit"
SSR_MODEL_DIR = Path(__file__).resolve().parent / "shapes-ssr"
FAST_MODEL_DIR = Path(__file__).resolve().parent / "shapes-tiny-fast"
# Styles for lumiere.stylize, by the name `--style` takes: LoRAs of shapes-tiny's 2D U-Net.
STYLE_DIRS = {name: Path(__file__).resolve().parent / "styles" / name for name in ("night", "outline")}


# What builds each shipped pipeline, by the ``kind`` :func:`default_model_dir` takes.
_BUILDS = {
    "text-to-video": (DEFAULT_MODEL_DIR, "make train-default"),
    "edit": (EDIT_MODEL_DIR, "python -m lumiere.recipes.shapes_tiny_edit"),
    "super-resolution": (SSR_MODEL_DIR, "python -m lumiere.recipes.shapes_ssr"),
    "fast": (FAST_MODEL_DIR, "python -m lumiere.recipes.shapes_fast"),
}


def default_model_dir(edit: bool = False, kind: str | None = None) -> Path:
    """The folder of a shipped pipeline: by default the text-to-video ``shapes-tiny``; with
    ``edit`` the conditional ``shapes-tiny-edit``; ``kind`` names one of ``text-to-video``,
    ``edit``, ``super-resolution`` (``shapes-ssr``), ``fast`` (``shapes-tiny-fast``)."""
    kind = kind or ("edit" if edit else "text-to-video")
    if kind not in _BUILDS:
        raise ValueError(f"kind={kind!r} is not a shipped model; one of: {', '.join(_BUILDS)}")
    folder, build = _BUILDS[kind]
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"the default model is not in {str(folder)!r}; pass --model, or build it with {build}")
    return folder
