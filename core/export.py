"""Hits written for other programs: the JSON of ``python -m core search --json`` and the GUI's export, CSV.

JSON: a list, best first, of one record per hit, that is one person in one video (:func:`hit_record`)::

    {"video": path, "track_id": int, "score": float,
     "segments": [{"start_s", "end_s", "start_frame", "end_frame"}, ...],
     "best_frame": int, "best_time_s": float, "best_box": [x1, y1, x2, y2], "track_ids": [int, ...]}

``track_id`` is the person's best-matching track (``best_frame`` and ``best_box`` are its),
``track_ids`` every track of the person in time order, ``segments`` their time segments.
In a photo collection (``core.photos``) a hit is one person in one photo and has one more key,
``"photo"``, that photo's file (and ``"photo_taken"``, its EXIF time as ISO text, when it has
one: photos of several collections share that timeline); ``best_box`` is the person's box in
the upright photo, ``video`` the collection and ``best_frame`` the photo's rank in it. Video
hits have no ``photo`` key (the CSV's ``photo`` column is empty).

CSV: one row per segment with the hit's fields repeated (:data:`CSV_COLUMNS`), so it
opens cleanly in a spreadsheet. Files are written atomically (a temporary file renamed
into place), so an interrupted export never leaves half a file under the user's name.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.fileio import write_text_atomic
from core.types import Hit

CSV_COLUMNS = ("video", "track_id", "score", "segment", "start_s", "end_s", "start_frame", "end_frame",
               "best_frame", "best_time_s", "x1", "y1", "x2", "y2", "track_ids", "photo")
"""Columns of the CSV export."""

FORMATS = (".json", ".csv")
"""File endings :func:`write_hits` knows."""


def hit_record(hit: Hit) -> dict[str, Any]:
    """One hit as a JSON-ready dict (the format in the module notes)."""
    return {
        "video": hit.video_path,
        "track_id": int(hit.track_id),
        "score": round(float(hit.score), 6),
        "segments": [{"start_s": round(seg.start_s, 6), "end_s": round(seg.end_s, 6),
                      "start_frame": int(seg.start_frame), "end_frame": int(seg.end_frame)}
                     for seg in hit.segments],
        "best_frame": int(hit.best_frame),
        "best_time_s": round(float(hit.best_time_s), 6),
        "best_box": [round(float(v), 2) for v in hit.best_box],
        "track_ids": [int(t) for t in hit.track_ids],
        **({"photo": hit.photo_path} if hit.photo_path else {}),
        **({"photo_taken": hit.photo_taken} if hit.photo_taken else {}),
    }


def hits_json(hits: Sequence[Hit]) -> str:
    """The hits as JSON text (a list of :func:`hit_record`, with a final newline)."""
    return json.dumps([hit_record(h) for h in hits], indent=2) + "\n"


def hits_csv(hits: Sequence[Hit]) -> str:
    """The hits as CSV text, one row per segment (:data:`CSV_COLUMNS`; ``track_ids`` space-separated)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for hit in hits:
        rec = hit_record(hit)
        segments = rec["segments"] or [{"start_s": "", "end_s": "", "start_frame": "", "end_frame": ""}]
        for n, seg in enumerate(segments, 1):
            writer.writerow([rec["video"], rec["track_id"], f"{rec['score']:.4f}", n, seg["start_s"],
                             seg["end_s"], seg["start_frame"], seg["end_frame"], rec["best_frame"],
                             rec["best_time_s"], *rec["best_box"], " ".join(map(str, rec["track_ids"])),
                             rec.get("photo", "")])
    return out.getvalue()


def write_json(hits: Sequence[Hit], target: str | Path) -> Path | None:
    """Write hits as JSON to a file (atomically) or, for ``"-"``, to stdout.

    Returns:
        The file written (``None`` for stdout).

    Raises:
        ReidSearchError: The file cannot be written (one sentence naming it).
    """
    if str(target) == "-":
        sys.stdout.write(hits_json(hits))
        return None
    write_text_atomic(Path(target), hits_json(hits), what="JSON file")
    return Path(target)


def write_csv(hits: Sequence[Hit], path: str | Path) -> Path:
    """Write hits as CSV (atomically); returns the path.

    Raises:
        ReidSearchError: The file cannot be written (one sentence naming it).
    """
    write_text_atomic(Path(path), hits_csv(hits), what="CSV file")
    return Path(path)


def write_hits(hits: Sequence[Hit], path: str | Path) -> Path:
    """Write hits as JSON or CSV, chosen by the ending of ``path`` (:data:`FORMATS`).

    Raises:
        ValueError: Another ending (the message names the file and the endings known).
        ReidSearchError: The file cannot be written (one sentence naming it).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: choose a file name ending in {' or '.join(FORMATS)}.")
    return write_json(hits, path) if suffix == ".json" else write_csv(hits, path)  # type: ignore[return-value]
