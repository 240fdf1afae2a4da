"""Argument types of ``python -m core``.

Each turns one argument's text into a value, or says in one sentence (through argparse)
why it cannot.
"""

from __future__ import annotations

import argparse
import math


def arg_threshold(text: str) -> float:
    """A similarity threshold in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1]")
    return value


def arg_positive(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def arg_seconds(text: str) -> float:
    """A number of seconds in [0, 60]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and 0.0 <= value <= 60.0):
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 60] seconds")
    return value


def arg_rate(text: str) -> float:
    """Frames per second of video, > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 < value <= 1000.0):
        raise argparse.ArgumentTypeError(f"{text} must be a number of frames per second > 0")
    return value


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
