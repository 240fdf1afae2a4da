"""Words and numbers as the user reads them (CLI and GUI alike): times, counts with plurals, hit names."""

from __future__ import annotations


def format_time(seconds: float, precise: bool = True) -> str:
    """A time in seconds as ``m:ss.s`` (``h:mm:ss.s`` from one hour on).

    Args:
        seconds: Time in seconds (negative values count as 0).
        precise: Keep tenths of a second (``False``: whole seconds, ``m:ss`` / ``h:mm:ss``).

    Examples:
        ``format_time(83.44) == "1:23.4"``, ``format_time(3725) == "1:02:05.0"``,
        ``format_time(3725, precise=False) == "1:02:05"``.
    """
    seconds = max(float(seconds), 0.0)
    if not precise:
        seconds = float(int(seconds))
    else:
        seconds = round(seconds, 1)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    sec = f"{s:04.1f}" if precise else f"{int(s):02d}"
    if h >= 1:
        return f"{int(h)}:{int(m):02d}:{sec}"
    return f"{int(m)}:{sec}"


def person_label(track_id: int, track_ids: tuple[int, ...] = ()) -> str:
    """A hit's name: ``"Track 11"`` for one track, ``"Person: tracks 4, 16, 31"`` for a linked person."""
    tracks = track_ids or (track_id,)
    return f"Track {track_id}" if len(tracks) == 1 else "Person: tracks " + ", ".join(map(str, tracks))


def plural(n: int, word: str, words: str | None = None) -> str:
    """``n`` and the word in the right number: ``"1 video"``, ``"2 videos"``, ``"2 people"``.

    Args:
        n: The count.
        word: Singular form.
        words: Plural form (default: ``word + "s"``), e.g. ``plural(2, "person", "people")``.
    """
    return f"{n} {word if n == 1 else (words or word + 's')}"
