"""Argument types of ``python -m core``.

Each turns one argument's text into a value, or says in one sentence (through argparse)
why it cannot.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, in_range, not_a_number: str, out_of_range: str) -> float:
    """``text`` as a finite float for which ``in_range(value)`` holds, else argparse's error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} {not_a_number}") from None
    if not (math.isfinite(value) and in_range(value)):
        raise argparse.ArgumentTypeError(f"{text} {out_of_range}")
    return value


def arg_threshold(text: str) -> float:
    """A similarity threshold in [0, 1]."""
    return _number(text, lambda v: 0.0 <= v <= 1.0, "is not a number", "is outside [0, 1]")


def arg_positive(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def arg_detect_size(text: str) -> int:
    """A detector input size: a whole number of pixels, a multiple of 32 (YOLO's largest stride)."""
    value = arg_positive(text)
    if value % 32:
        raise argparse.ArgumentTypeError(f"{text} is not a multiple of 32 pixels (e.g. 640, 960, 1280)")
    return value


def arg_seconds(text: str) -> float:
    """A number of seconds in [0, 60]."""
    return _number(text, lambda v: 0.0 <= v <= 60.0, "is not a number of seconds",
                   "is outside [0, 60] seconds")


def arg_rate(text: str) -> float:
    """Frames per second of video, > 0."""
    return _number(text, lambda v: 0.0 < v <= 1000.0, "is not a number",
                   "must be a number of frames per second > 0")


def arg_hit_ref(text: str) -> int | tuple[str | int, int]:
    """``TRACK`` or ``VIDEO:TRACK`` (``VIDEO`` a path or a database id) as the engine takes it."""
    video, sep, track = text.rpartition(":")
    try:
        track_id = int(track)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not TRACK or VIDEO:TRACK (a track id after the colon)"
                                         ) from None
    if not sep:
        return track_id
    if not video:
        raise argparse.ArgumentTypeError(f"{text!r}: name the video before the colon")
    return (int(video) if video.isdigit() else video, track_id)
