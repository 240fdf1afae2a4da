"""Export hits as JSON or CSV (Qt-free).

The JSON is the CLI's (``core.cli.hit_json``): a list of
``{video, track_id, score, segments: [{start_s, end_s, start_frame, end_frame}], best_frame,
best_time_s, best_box: [x1, y1, x2, y2]}``. The CSV has one row per segment with the hit's
fields repeated, so it opens cleanly in a spreadsheet.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.cli import hit_json

CSV_COLUMNS = ("video", "track_id", "score", "segment", "start_s", "end_s", "start_frame", "end_frame",
               "best_frame", "best_time_s", "x1", "y1", "x2", "y2")
"""Columns of the CSV export."""


def hit_record(hit: Any) -> dict[str, Any]:
    """One hit (``core.types.Hit``) as a JSON-ready dict, as ``python -m core search --json`` writes it."""
    return hit_json(hit)


def write_json(hits: Sequence[Any], path: str | Path) -> Path:
    """Write ``hits`` to ``path`` as a JSON list; returns the path."""
    path = Path(path)
    path.write_text(json.dumps([hit_record(h) for h in hits], indent=2) + "\n", encoding="utf-8")
    return path


def write_csv(hits: Sequence[Any], path: str | Path) -> Path:
    """Write ``hits`` to ``path`` as CSV, one row per segment; returns the path."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for hit in hits:
            rec = hit_record(hit)
            segments = rec["segments"] or [{"start_s": "", "end_s": "", "start_frame": "", "end_frame": ""}]
            for n, seg in enumerate(segments, 1):
                writer.writerow([rec["video"], rec["track_id"], f"{rec['score']:.4f}", n, seg["start_s"],
                                 seg["end_s"], seg["start_frame"], seg["end_frame"], rec["best_frame"],
                                 rec["best_time_s"], *rec["best_box"]])
    return path


def write_hits(hits: Sequence[Any], path: str | Path) -> Path:
    """Write ``hits`` as JSON or CSV depending on the suffix of ``path`` (``.json`` / ``.csv``).

    Raises:
        ValueError: For another suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return write_json(hits, path)
    if suffix == ".csv":
        return write_csv(hits, path)
    raise ValueError(f"{path}: choose a .json or .csv file name")
