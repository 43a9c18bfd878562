"""The input validators of the package, in one module: the checks of user-given arguments.

Every validator raises ValueError naming the argument, its value and what is allowed
(``"fps must be a positive finite number; got 0"``), so a bad option can be fixed from the
message alone. :func:`frame_size` also returns its argument normalized, as ``(H, W)``.
"""

from __future__ import annotations

import argparse
import math
import numbers


def check_fps(fps: float) -> None:
    """Raise ValueError unless ``fps`` is a positive finite number (not a bool)."""
    is_number = isinstance(fps, numbers.Real) and not isinstance(fps, bool)
    if not (is_number and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive finite number; got {fps!r}")


def check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Raise ValueError unless ``value`` is an integer in ``[low, high]``."""
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not (is_int and value >= low and (high is None or value <= high)):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}; got {value!r}")


def frame_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` from an int (square) or an ``(H, W)`` pair of positive integers."""
    if not isinstance(size, (tuple, list)):
        check_int("size", size, 1)
        return size, size
    if len(size) != 2:
        raise ValueError(f"size must be an int or an (H, W) pair; got {size!r}")
    check_int("size[0] (height)", size[0], 1)
    check_int("size[1] (width)", size[1], 1)
    return size[0], size[1]


def check_frame_correlation(frame_correlation: float) -> None:
    """Raise ValueError unless the noise's frame correlation is in ``[0, 1)``."""
    if not 0 <= frame_correlation < 1:
        raise ValueError(f"noise_frame_correlation={frame_correlation} is invalid; it must be in [0, 1)")


def check_multiple(name: str, value: int, factor: int) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive multiple of ``factor``, naming the
    argument, its value and the nearest valid values."""
    if value < 1 or value % factor:
        lower, upper = value // factor * factor, (value // factor + 1) * factor
        nearest = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(f"{name}={value} must be a positive multiple of {factor}; nearest valid: {nearest}")


def check_finite(name: str, value: object, low: float | None = None) -> None:
    """Raise ValueError unless ``value`` is a finite real number (not a bool), at least
    ``low`` when given. NaN and infinity are refused everywhere: they pass ``<``/``>`` checks
    silently and turn whole outputs into NaN."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (is_number and math.isfinite(value) and (low is None or value >= low)):
        allowed = "a finite number" if low is None else f"a finite number >= {low}"
        raise ValueError(f"{name} must be {allowed}; got {value!r}")


def check_text(name: str, text: object) -> None:
    """Raise ValueError unless ``text`` is a string or a non-empty list of strings, each
    valid Unicode (a command line argument with invalid UTF-8 bytes arrives as a string with
    lone surrogates, which tokenizers mangle)."""
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, list) or not texts:
        got = "an empty list" if isinstance(texts, list) else type(text).__name__
        raise ValueError(f"{name} must be a str or a non-empty list of str; got {got}")
    for index, item in enumerate(texts):
        label = name if isinstance(text, str) else f"{name}[{index}]"
        if not isinstance(item, str):
            raise ValueError(f"{label} must be a str; got {type(item).__name__} {item!r}")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"{label} is not valid UTF-8 text (bad bytes at character {error.start})") from None


def finite_float(text: str) -> float:
    """argparse type: a finite number (``nan`` and ``inf`` parse as floats, but no option
    means them)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def seed_int(text: str) -> int:
    """argparse type: an integer seed in [0, 2**64), the range ``torch.Generator`` takes."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"{value} is out of range; seeds are integers in [0, 2**64)")
    return value
