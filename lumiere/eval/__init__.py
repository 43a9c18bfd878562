"""Evaluation of generated clips: scoring shapes-world clips from their pixels."""

from .scoring import ClipScore, chance_levels, score_clip, summarize

__all__ = ["ClipScore", "chance_levels", "score_clip", "summarize"]
