"""Evidence out of a search: an MP4 clip of each hit, a contact sheet and a record of how they were found.

:func:`export_evidence` writes, into one folder:

* ``clips/NN_<video>_track<T>_<first>-<last>.mp4``: for each hit (``NN`` its rank, best
  first), one clip per time segment in which the person was seen, from ``margin_s``
  seconds before to ``margin_s`` after (segments whose clips would overlap become one
  clip). Each frame carries the time (the time of day when the video has a clock, see
  :func:`video_clock`, else the time in the video) and, optionally, the person's box
  drawn from the stored sightings (between two processed frames of a strided run the
  box is interpolated; in the margins, where the person was not seen, none is drawn).
  MPEG-4 Part 2 (``mp4v``, what OpenCV writes everywhere), at the video's size and rate.
  A hit in a photo collection (``Hit.photo_path``) has no clip; the sheet shows its crop.
* ``contact_sheet.png``: the query photos, then the best crop of each hit with its rank,
  score, time range, video and track.
* ``hits.csv``: the hits in the CSV layout of :mod:`core.export`.
* ``query_photos/``: copies of the query photos.
* ``export.json``: what produced it all: the query (id, time, photos with their sha256,
  threshold), the models and settings of each indexing run the hits come from (ReID and
  detector names and sha256, stride), the export options, and every hit (the record of
  :func:`core.export.hit_record`) with the files made from it.

Every file is written under a temporary name and renamed into place when complete, so
a cancelled or failed export never leaves half a clip under a real name.

The export needs no model: it reads the library (:class:`core.library.Library`) and the
videos. It is a generator (progress between frames, cancellable), run by the CLI's
``export`` command and by a GUI worker alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from core.errors import ReidSearchError
from core.export import hit_record, write_csv
from core.fileio import read_image, sha256_file, write_text_atomic
from core.library import HitTrack, Library, SearchResult
from core.store import Sightings
from core.text import format_time, plural
from core.types import Hit
from core.video import open_hit_source

DEFAULT_MARGIN_S = 2.0
"""Seconds of video kept before and after each segment."""

BOX_COLOUR = (118, 230, 0)
"""BGR colour of the person's box in clips (the app's selection green)."""

SHEET_CELL = (150, 230)
"""Width and height of a crop's place on the contact sheet (its caption goes below)."""

SHEET_COLUMNS = 6
CAPTION_LINES = 3

_CLOCK = re.compile(r"(?<!\d)(20\d\d|19\d\d)[-_.]?(\d\d)[-_.]?(\d\d)[T _-]?"
                    r"(\d\d)[-_.:hH]?(\d\d)[-_.:mM]?(\d\d)(?!\d)")


def video_clock(path: str | Path) -> datetime | None:
    """When a video's first frame was recorded, if its name says so (``None`` otherwise).

    Recorders and phones name their files by the start time: ``cam2_20240501_140322.mp4``,
    ``2024-05-01 14-03-22.avi``, ``VID_20240501_140322.mp4``, ``20240501140322.mp4``. The first
    date and time of that shape in the file name is taken, in local time.
    """
    match = _CLOCK.search(Path(path).stem)
    if match is None:
        return None
    try:
        return datetime(*(int(g) for g in match.groups()))  # type: ignore[arg-type]
    except ValueError:  # 2024-13-45: digits, not a date
        return None


@dataclass(frozen=True)
class ExportOptions:
    """What to export.

    Attributes:
        clips: Write the MP4 clips (the contact sheet, CSV and record are always written).
        margin_s: Seconds kept before and after each segment (>= 0).
        boxes: Draw the person's box into the clips.
    """

    clips: bool = True
    margin_s: float = DEFAULT_MARGIN_S
    boxes: bool = True

    def __post_init__(self) -> None:
        if not self.margin_s >= 0:
            raise ValueError(f"margin_s must be >= 0, got {self.margin_s}")


@dataclass(frozen=True)
class ExportProgress:
    """How far an export is: ``done`` of ``total`` work units (frames of clips, one per hit for the sheet)."""

    done: int
    total: int
    text: str


@dataclass(frozen=True)
class ExportReport:
    """A finished export.

    Attributes:
        folder: The export folder.
        clips: The clips written.
        sheet: The contact sheet.
        record: The ``export.json`` record.
        hits: Hits exported.
    """

    folder: Path
    clips: tuple[Path, ...]
    sheet: Path
    record: Path
    hits: int
    files: tuple[Path, ...] = field(default=())


@dataclass(frozen=True)
class _Clip:
    rank: int
    hit: Hit
    first: int
    last: int
    path: Path


def clip_spans(hit: Hit, fps: float, frame_count: int, margin_s: float) -> list[tuple[int, int]]:
    """Frame spans ``(first, last)`` of a hit's clips: its segments widened by the margin, overlaps merged."""
    pad = int(round(max(margin_s, 0.0) * (fps if fps > 0 else 25.0)))
    last_frame = max(frame_count - 1, 0) if frame_count > 0 else None
    segments = [(s.start_frame, s.end_frame) for s in hit.segments] or [(hit.best_frame, hit.best_frame)]
    spans: list[tuple[int, int]] = []
    for a, b in sorted(segments):
        a, b = max(a - pad, 0), b + pad
        if last_frame is not None:
            b = min(b, last_frame)
        if spans and a <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


def box_at(sightings: Sightings, frame: int, max_gap: int) -> np.ndarray | None:
    """The track's box at ``frame``: stored, or interpolated between sightings at most ``max_gap`` apart."""
    frames = sightings.frames
    i = int(np.searchsorted(frames, frame))
    if i < len(frames) and frames[i] == frame:
        return np.asarray(sightings.boxes[i], np.float32)
    if i == 0 or i >= len(frames) or frames[i] - frames[i - 1] > max_gap:
        return None
    t = (frame - frames[i - 1]) / float(frames[i] - frames[i - 1])
    return (1 - t) * sightings.boxes[i - 1] + t * sightings.boxes[i]


def _stamp(image: np.ndarray, lines: Sequence[str]) -> None:
    """Write lines of text in the bottom left corner, white on a dark band."""
    h = image.shape[0]
    scale = max(0.45, image.shape[1] / 1400)
    thick = 1 if scale < 0.8 else 2
    line_h = int(26 * scale) + 6
    top = h - line_h * len(lines) - 6
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t in lines) + 12
    band = image[max(top, 0):h, 0:min(width, image.shape[1])]
    band[:] = (band * 0.35).astype(np.uint8)
    for n, text in enumerate(lines):
        y = top + line_h * (n + 1) - 4
        cv2.putText(image, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


def _draw_box(image: np.ndarray, box: np.ndarray, label: str) -> None:
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, 2, cv2.LINE_AA)
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    ty = y1 - 4 if y1 - th - 6 >= 0 else y2 + th + 4
    cv2.rectangle(image, (x1 - 1, ty - th - 3), (x1 + tw + 5, ty + 3), BOX_COLOUR, -1)
    cv2.putText(image, label, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (10, 12, 14), 1, cv2.LINE_AA)


def _time_text(clock: datetime | None, name: str, time_s: float) -> str:
    if clock is None:
        return f"{name}  {format_time(time_s)}"
    return (clock + timedelta(seconds=time_s)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-5]


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.stem}.part{path.suffix}")


def _commit(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as err:
        raise ReidSearchError(f"{path}: cannot write the file ({err.strerror or err}).") from None


def _crop(image: np.ndarray, box: Sequence[float], margin: float = 0.08) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    ix1, iy1 = int(max(0, min(w - 1, x1 - mx))), int(max(0, min(h - 1, y1 - my)))
    ix2, iy2 = int(max(ix1 + 1, min(w, x2 + mx))), int(max(iy1 + 1, min(h, y2 + my)))
    return image[iy1:iy2, ix1:ix2]


def _cell(image: np.ndarray | None, captions: Sequence[str], *, highlight: bool = False) -> np.ndarray:
    """One place of the contact sheet: the image fitted into :data:`SHEET_CELL`, captions below."""
    cw, ch = SHEET_CELL
    cap_h = 18 * CAPTION_LINES + 8
    cell = np.full((ch + cap_h, cw, 3), 30, np.uint8)
    if image is not None and image.size:
        scale = min((cw - 8) / image.shape[1], (ch - 8) / image.shape[0])
        size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
        fitted = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        x, y = (cw - size[0]) // 2, (ch - size[1]) // 2
        cell[y:y + size[1], x:x + size[0]] = fitted
    if highlight:
        cv2.rectangle(cell, (1, 1), (cw - 2, ch - 2), BOX_COLOUR, 2)
    for n, text in enumerate(captions[:CAPTION_LINES]):
        colour = (255, 255, 255) if n == 0 else (200, 205, 210)
        cv2.putText(cell, text[:26], (6, ch + 16 + 18 * n), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                    cv2.LINE_AA)
    return cell


def contact_sheet(cells: Sequence[np.ndarray], title: str, columns: int = SHEET_COLUMNS) -> np.ndarray:
    """Lay cells out in rows under a title line; returns the BGR image."""
    columns = max(1, min(columns, len(cells) or 1))
    ch, cw = (cells[0].shape[:2] if cells else (SHEET_CELL[1], SHEET_CELL[0]))
    rows = -(-len(cells) // columns) if cells else 0
    gap, head = 6, 34
    sheet = np.full((head + rows * (ch + gap) + gap, columns * (cw + gap) + gap, 3), 18, np.uint8)
    cv2.putText(sheet, title, (gap, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (235, 240, 245), 1, cv2.LINE_AA)
    for n, cell in enumerate(cells):
        r, c = divmod(n, columns)
        y, x = head + r * (ch + gap), gap + c * (cw + gap)
        sheet[y:y + cell.shape[0], x:x + cell.shape[1]] = cell
    return sheet


def _clip_name(rank: int, hit: Hit, first: int, last: int) -> str:
    stem = re.sub(r"[^\w.-]+", "_", Path(hit.video_path).stem)[:40]
    return f"{rank:02d}_{stem}_track{hit.track_id}_{first:06d}-{last:06d}.mp4"


class _Exporter:
    """One export run (see :func:`export_evidence`)."""

    def __init__(self, hits: Sequence[Hit], folder: Path, library: Library, query: SearchResult | None,
                 threshold: float | None, options: ExportOptions, cancel: threading.Event | None) -> None:
        self.hits = tuple(hits)
        self.folder = folder
        self.library = library
        self.query = query
        self.threshold = threshold
        self.options = options
        self.cancel = cancel
        self.tracks: dict[int, HitTrack] = {}
        self.done = 0
        self.total = 0

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def plan(self) -> list[_Clip]:
        clips = []
        for rank, hit in enumerate(self.hits, 1):
            self.tracks[rank] = self.library.hit_track(hit)
            if not self.options.clips or hit.photo_path:
                continue  # a photo hit has no clip: the contact sheet shows it
            video = self.library.store.get_video(int(hit.video_id))
            for first, last in clip_spans(hit, video.fps, video.frame_count, self.options.margin_s):
                path = self.folder / "clips" / _clip_name(rank, hit, first, last)
                clips.append(_Clip(rank, hit, first, last, path))
        self.total = sum(c.last - c.first + 1 for c in clips) + len(self.hits)
        return clips

    def write_clip(self, clip: _Clip) -> Iterator[ExportProgress]:
        hit, track = clip.hit, self.tracks[clip.rank]
        stride = max(int(track.run.settings.get("stride", 1)), 1)
        name = Path(hit.video_path).name
        clock = video_clock(hit.video_path)
        tmp = _temporary(clip.path)
        writer = None
        try:
            with open_hit_source(hit) as source:
                fps = source.fps if source.fps and source.fps > 0 else 25.0
                for frame in source.iter_frames(1, clip.first):
                    if frame.index > clip.last:
                        break
                    if self.cancelled():
                        return
                    image = frame.image.copy()
                    if writer is None:
                        h, w = image.shape[:2]
                        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
                        if not writer.isOpened():
                            raise ReidSearchError(f"{clip.path}: cannot write the clip (OpenCV has no MPEG-4 "
                                                  "encoder here, or the folder is not writable).")
                    box = box_at(track.sightings, frame.index, 2 * stride) if self.options.boxes else None
                    if box is not None:
                        _draw_box(image, box, f"#{clip.rank}  {hit.score:.2f}")
                    _stamp(image, [_time_text(clock, name, frame.time_s),
                                   f"hit #{clip.rank}, track {hit.track_id}, frame {frame.index}"])
                    writer.write(image)
                    self.done += 1
                    if frame.index % 10 == 0:
                        yield ExportProgress(self.done, self.total, f"Writing {clip.path.name}")
            if writer is None:
                raise ReidSearchError(f"{hit.video_path}: frames {clip.first}-{clip.last} cannot be read.")
            writer.release()
            writer = None
            _commit(tmp, clip.path)
        finally:
            if writer is not None:
                writer.release()
            with contextlib.suppress(OSError):
                tmp.unlink()

    def sheet_cells(self) -> Iterator[ExportProgress | np.ndarray]:
        query = self.query
        for photo in (query.photos if query is not None else ()):
            image = read_image(photo) if Path(photo).is_file() else None
            yield _cell(image, ["query photo", Path(photo).name], highlight=True)
        by_video: dict[tuple[str, bool], list[int]] = {}
        for rank, hit in enumerate(self.hits, 1):
            by_video.setdefault((hit.video_path, bool(hit.photo_path)), []).append(rank)
        crops: dict[int, np.ndarray | None] = {}
        for ranks in by_video.values():
            with open_hit_source(self.hits[ranks[0] - 1]) as source:
                for rank in sorted(ranks, key=lambda r: self.hits[r - 1].best_frame):
                    if self.cancelled():
                        return
                    hit = self.hits[rank - 1]
                    try:
                        crops[rank] = _crop(source.read(int(hit.best_frame)).image, hit.best_box)
                    except ReidSearchError:
                        crops[rank] = None
                    self.done += 1
                    yield ExportProgress(self.done, self.total, "Making the contact sheet")
        for rank, hit in enumerate(self.hits, 1):
            segs = hit.segments
            span = (f"{format_time(segs[0].start_s)}-{format_time(segs[-1].end_s)}" if segs
                    else format_time(hit.best_time_s))
            where = [Path(hit.photo_path).name, Path(hit.video_path).name] if hit.photo_path else \
                [span, f"{Path(hit.video_path).name} t{hit.track_id}"]
            yield _cell(crops.get(rank), [f"#{rank}   {hit.score:.2f}", *where])

    def record(self, clips: Sequence[_Clip], photos: dict[str, str]) -> dict:
        runs = {}
        for rank, hit in enumerate(self.hits, 1):
            run = self.tracks[rank].run
            runs[run.id] = {"video": hit.video_path, "run_id": run.id, "reid_model": run.reid_name,
                            "reid_sha256": run.reid_sha256, "detector": run.detector_name,
                            "detector_sha256": run.detector_sha256, "stride": run.settings.get("stride"),
                            "indexed": run.finished or run.started}
        query = self.query
        hits = []
        for rank, hit in enumerate(self.hits, 1):
            rec = hit_record(hit)
            rec["rank"] = rank
            rec["run_id"] = self.tracks[rank].run.id
            rec["clips"] = [f"clips/{c.path.name}" for c in clips if c.rank == rank]
            hits.append(rec)
        return {
            "exported": datetime.now().astimezone().isoformat(timespec="seconds"),
            "query": None if query is None else {
                "id": query.query_id, "created": query.created, "threshold_saved": query.threshold,
                "photos": [{"path": p, "copy": photos.get(p), "sha256": _digest(p)} for p in query.photos],
                "notes": list(query.notes)},
            "threshold": self.threshold,
            "models": list(runs.values()),
            "options": {"clips": self.options.clips, "margin_s": self.options.margin_s,
                        "boxes": self.options.boxes},
            "files": {"contact_sheet": "contact_sheet.png", "hits_csv": "hits.csv"},
            "hits": hits,
        }


def _digest(path: str) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def _copy_photos(query: SearchResult | None, folder: Path) -> dict[str, str]:
    copies: dict[str, str] = {}
    for n, photo in enumerate(query.photos if query is not None else (), 1):
        src = Path(photo)
        if src.is_file():
            dest = folder / f"{n:02d}_{src.name}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            copies[photo] = f"query_photos/{dest.name}"
    return copies


def export_evidence(hits: Sequence[Hit], folder: str | Path, *, library: Library,
                    query: SearchResult | None = None, threshold: float | None = None,
                    options: ExportOptions | None = None,
                    cancel: threading.Event | None = None) -> Iterator[ExportProgress | ExportReport]:
    """Write clips, a contact sheet, the hits and their record into ``folder`` (see the module notes).

    Args:
        hits: The hits to export, best first.
        folder: The export folder (created when missing; files of an earlier export are replaced).
        library: The library the hits come from (their tracks' boxes and runs).
        query: The search the hits belong to (its photos, time and threshold are recorded).
        threshold: The threshold the hits were chosen at (recorded).
        options: What to write (default: clips with a 2 s margin and boxes).
        cancel: Set it to stop after the current frame (nothing half-written is left).

    Yields:
        :class:`ExportProgress` items, then one :class:`ExportReport` (unless cancelled).

    Raises:
        ReidSearchError: No hits, a video or track is gone, or a file cannot be written (one sentence).
    """
    options = options or ExportOptions()
    if not hits:
        raise ReidSearchError("there are no hits to export (lower the threshold, or search first).")
    out = Path(folder)
    try:
        (out / "clips").mkdir(parents=True, exist_ok=True)
        photos = _copy_photos(query, out / "query_photos")
    except OSError as err:
        raise ReidSearchError(f"{out}: cannot write the export here ({err.strerror or err}).") from None
    job = _Exporter(hits, out, library, query, threshold, options, cancel)
    clips = job.plan()
    yield ExportProgress(0, job.total, f"Exporting {plural(len(job.hits), 'hit')}")
    for clip in clips:
        yield from job.write_clip(clip)
        if job.cancelled():
            return
    cells = []
    for item in job.sheet_cells():
        if isinstance(item, ExportProgress):
            yield item
        else:
            cells.append(item)
    if job.cancelled():
        return
    title = (f"Search #{query.query_id}: {plural(len(job.hits), 'hit')}" if query is not None
             else plural(len(job.hits), "hit"))
    if threshold is not None:
        title += f" at or above {threshold:.2f}"
    sheet = out / "contact_sheet.png"
    tmp = _temporary(sheet)
    if not cv2.imwrite(str(tmp), contact_sheet(cells, title), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise ReidSearchError(f"{sheet}: cannot write the contact sheet.")
    _commit(tmp, sheet)
    csv_path = write_csv(job.hits, out / "hits.csv")
    record = out / "export.json"
    write_text_atomic(record, json.dumps(job.record(clips, photos), indent=2) + "\n", what="export record")
    written = tuple(c.path for c in clips)
    yield ExportReport(folder=out, clips=written, sheet=sheet, record=record, hits=len(job.hits),
                       files=(*written, sheet, csv_path, record))
