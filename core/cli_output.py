"""What the command line prints: hit tables, indexing progress bars, how each video ended, exit codes.

:mod:`core.cli` parses the commands and calls the engine; this module only writes to the
terminal (tables to stdout, progress and errors to stderr).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from core.text import format_time, plural
from core.types import Hit, IndexOutcome, IndexProgress

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Exit statuses of ``python -m core``."""


MARK_SIGNS = {"confirmed": "yes", "rejected": "no", "": ""}
"""How the ``mark`` column shows a hit's mark."""


def hit_table(hits: Sequence[Hit]) -> str:
    """Hits as a text table (one row per hit: a person in one video, with all their tracks)."""
    names = [Path(h.photo_path or h.video_path).name for h in hits]
    rows = [("#", "similarity", "mark", "video", "track", "tracks", "seen (time ranges)", "best frame",
             "box (x1, y1, x2, y2)")]
    for i, (h, name) in enumerate(zip(hits, names, strict=True), 1):
        if h.photo_path:  # a photo of a collection: its camera time (when it has one) and its rank
            seen = h.photo_taken.replace("T", " ") or "photo (no time)"
            best = f"photo {h.best_frame + 1}"
        else:
            seen = ", ".join(f"{format_time(seg.start_s)}-{format_time(seg.end_s)}" for seg in h.segments)
            best = f"{h.best_frame} ({format_time(h.best_time_s)})"
        box = ", ".join(str(int(round(v))) for v in h.best_box)
        rows.append((str(i), f"{h.score:.3f}", MARK_SIGNS.get(h.mark, h.mark), name, str(h.track_id),
                     ",".join(map(str, h.track_ids)), seen, best, f"({box})"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def print_error(message: str) -> None:
    """Print ``error: message`` to stderr."""
    print(f"error: {message}", file=sys.stderr)


class IndexBars:
    """tqdm bars: one per video being indexed, and one for the batch when there are several.

    A video's bar starts at its first progress item (so its rate counts this run only); the
    batch's counts the frames of the videos started so far.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.bars: dict[str, object] = {}
        self.frames: dict[str, tuple[int, int]] = {}
        self.finished = 0
        self.total = None

    def _bar(self, **kwargs: object):
        from tqdm import tqdm

        kwargs.setdefault("unit", "frame")
        return tqdm(dynamic_ncols=True, file=sys.stderr, **kwargs)

    def show(self, item: IndexProgress) -> None:
        """Move the bar of ``item``'s video (made at its first item) and the batch's."""
        if item.skipped:
            return
        bar = self.bars.get(item.video_path)
        if bar is None:
            bar = self.bars[item.video_path] = self._bar(total=item.frames_total or None,
                                                         desc=Path(item.video_path).name,
                                                         initial=item.frames_done,
                                                         unit="photo" if item.photos else "frame")
        bar.set_postfix({"people" if item.photos else "tracks": item.tracks}, refresh=False)
        bar.update(item.frames_done - bar.n)
        self.frames[item.video_path] = (item.frames_done, item.frames_total)
        self._overall()

    def _overall(self) -> None:
        if self.count < 2:
            return
        done = sum(d for d, _ in self.frames.values())
        total = sum(t for _, t in self.frames.values())
        if self.total is None:
            self.total = self._bar(total=total or None, desc="all videos", position=0)
        self.total.total = total or None
        self.total.set_description(f"all videos ({self.finished}/{self.count} done)", refresh=False)
        self.total.update(done - self.total.n)

    def end(self, video: str) -> None:
        """One video is over: close its bar and count it."""
        bar = self.bars.pop(video, None)
        if bar is not None:
            bar.close()
        self.finished += 1
        self._overall()

    def close(self) -> None:
        """Close every bar still open."""
        for bar in self.bars.values():
            bar.close()
        self.bars = {}
        if self.total is not None:
            self.total.close()
            self.total = None


def report(outcome: IndexOutcome) -> int:
    """Print how one video ended; returns the exit status it calls for."""
    video, last = outcome.video_path, outcome.last
    if outcome.status == "failed":
        print_error(str(outcome.message))
        return EXIT_ERROR
    found = ("person found", "people found") if last is not None and last.photos else ("track", "tracks")
    if outcome.status == "skipped":
        print(f"{video}: already indexed ({plural(last.tracks if last else 0, *found)}).")
        return EXIT_OK
    if outcome.status == "cancelled":
        where = f" at frame {last.frames_done} of {last.frames_total}" if last else ""
        print(f"{video}: cancelled{where}; run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    wall = max(outcome.elapsed_s, 1e-9)
    unit = "photo" if last.photos else "frame"
    print(f"{video}: indexed {plural(last.frames_done, unit)}, {plural(last.tracks, *found)} "
          f"in {wall:.1f} s ({last.frames_done / wall:.1f} {unit}s/s).")
    if outcome.message:
        print_error(f"{outcome.message} The frames that decode were indexed.")
        return EXIT_ERROR
    return EXIT_OK


def print_rows(rows: list[tuple[str, ...]]) -> None:
    """Print a table of rows (the first is the header) indented, unless it has no rows but the header."""
    if len(rows) == 1:
        return
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
