"""Training data: the procedural shapes world and Hugging Face-style media folders."""

from .shapes import (
    BACKGROUNDS,
    COLOURS,
    COMBINATIONS,
    DIRECTIONS,
    HELD_OUT,
    MOTIONS,
    PALETTE,
    SHAPES,
    ClipSpec,
    ClipTrack,
    caption,
    render_clip,
    sample_specs,
    track,
    write_dataset,
)
from .video_folder import ImageFolderDataset, VideoFolderDataset

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "COMBINATIONS",
    "DIRECTIONS",
    "HELD_OUT",
    "MOTIONS",
    "PALETTE",
    "SHAPES",
    "ClipSpec",
    "ClipTrack",
    "ImageFolderDataset",
    "VideoFolderDataset",
    "caption",
    "render_clip",
    "sample_specs",
    "track",
    "write_dataset",
]
