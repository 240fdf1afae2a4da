"""Command line: ``python -m core index | search | list | show``.

::

    python -m core index VIDEO... [--db PATH] [--stride N] [--detector FILE] [--reid FILE]
                                  [--device auto|cpu|cuda]
    python -m core search --query PHOTO... [--db PATH] [--video VIDEO]... [--threshold T] [--top K]
                          [--index flat|flat16|ivf]
                          [--json OUT] [--detector FILE] [--reid FILE] [--device ...]
    python -m core list [--db PATH]
    python -m core show QUERY_ID [--db PATH] [--threshold T] [--top K] [--json OUT]

``VIDEO`` is a video file, a folder of images (one image sequence), or a folder of
videos. A folder is a folder of videos when it holds at least one file with a video
ending (``core.video.VIDEO_EXTENSIONS``, any case): each of those is indexed, in natural name
order (sub-folders and other files are ignored). A folder without video files is an
image sequence (its images, see ``core.video.IMAGE_EXTENSIONS``, are the frames).

Exit status: 0 success, 1 an error (one line ``error: ...`` on stderr; with several
videos the others are still indexed), 2 bad command-line arguments, 130 interrupted.
Ctrl-C while indexing stops after the current frame and saves the progress; run the
same command again to resume. A second Ctrl-C stops at once (the last checkpoint is
kept, so the run still resumes).

``--json OUT`` writes the hits at or above the threshold, best first, as a list of
``{"video": path, "track_id": int, "score": float, "segments": [{"start_s", "end_s",
"start_frame", "end_frame"}], "best_frame": int, "best_time_s": float, "best_box":
[x1, y1, x2, y2]}`` (``-`` writes it to stdout instead of the table).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core import paths
from core.errors import ReidSearchError, VideoError
from core.types import Hit

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# --------------------------------------------------------------------------- helpers


def expand_videos(items: Sequence[str | Path]) -> list[Path]:
    """Turn the command line's VIDEO arguments into the videos / image folders to index.

    Args:
        items: Video files, image folders, or folders of videos.

    Returns:
        Paths in order, each once.

    Raises:
        VideoError: An item does not exist.
    """
    from core.video import video_files

    out: list[Path] = []
    for item in items:
        path = Path(item)
        if not path.exists():
            raise VideoError(f"{path}: no such file or folder.")
        files = video_files(path) if path.is_dir() else []
        out += files or [path]
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def fmt_time(seconds: float) -> str:
    """``83.4`` -> ``"1:23.4"``; ``3725`` -> ``"1:02:05.0"``."""
    seconds = max(float(seconds), 0.0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h >= 1:
        return f"{int(h)}:{int(m):02d}:{s:04.1f}"
    return f"{int(m)}:{s:04.1f}"


def hit_json(hit: Hit) -> dict[str, Any]:
    """One hit in the ``--json`` format."""
    return {
        "video": hit.video_path,
        "track_id": int(hit.track_id),
        "score": round(float(hit.score), 6),
        "segments": [{"start_s": round(s.start_s, 6), "end_s": round(s.end_s, 6),
                      "start_frame": s.start_frame, "end_frame": s.end_frame} for s in hit.segments],
        "best_frame": int(hit.best_frame),
        "best_time_s": round(float(hit.best_time_s), 6),
        "best_box": [round(float(v), 2) for v in hit.best_box],
    }


def write_json(target: str, hits: Sequence[Hit]) -> None:
    """Write hits as JSON to ``target`` (``-``: stdout), atomically for files."""
    text = json.dumps([hit_json(h) for h in hits], indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ReidSearchError(f"{target}: cannot write the JSON file ({err.strerror or err}).") from None


def hit_table(hits: Sequence[Hit]) -> str:
    """Hits as a text table (one row per hit)."""
    names = [Path(h.video_path).name for h in hits]
    rows = [("#", "similarity", "video", "track", "seen (time ranges)", "best frame", "box (x1, y1, x2, y2)")]
    for i, (h, name) in enumerate(zip(hits, names, strict=True), 1):
        seen = ", ".join(f"{fmt_time(s.start_s)}-{fmt_time(s.end_s)}" for s in h.segments)
        box = ", ".join(str(int(round(v))) for v in h.best_box)
        rows.append((str(i), f"{h.score:.3f}", name, str(h.track_id), seen,
                     f"{h.best_frame} ({fmt_time(h.best_time_s)})", f"({box})"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1]")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def _engine(args: argparse.Namespace) -> Any:
    from core.engine import Engine

    engine = Engine(args.db, detector=args.detector, reid=args.reid, device=args.device,
                    stride=getattr(args, "stride", 2), index_kind=getattr(args, "index", "flat"))
    for note in engine.notes:
        print(f"note: {note}", file=sys.stderr)
    return engine


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def cmd_index(args: argparse.Namespace) -> int:
    """Index each video (a failing one does not stop the others)."""
    from tqdm import tqdm

    videos = expand_videos(args.videos)
    engine = _engine(args)
    cancel = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nstopping after the current frame (Ctrl-C again to stop at once)...", file=sys.stderr)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    status = EXIT_OK
    try:
        for video in videos:
            t0 = time.perf_counter()
            bar = None
            last = None
            claimed = None
            gen = engine.index(video, cancel=cancel)
            try:
                for p in gen:
                    last = p
                    if claimed is None:
                        claimed = p.frames_total
                    if p.skipped:
                        break
                    if bar is None:  # starts at the first item, so the rate counts this run's frames only
                        bar = tqdm(total=p.frames_total or None, unit="frame", desc=Path(video).name,
                                   dynamic_ncols=True, file=sys.stderr, initial=p.frames_done)
                    bar.set_postfix(tracks=p.tracks, refresh=False)
                    bar.update(p.frames_done - bar.n)
            except KeyboardInterrupt:
                gen.close()
                if bar is not None:
                    bar.close()
                    bar = None
                _err(f"{video}: interrupted; run the same command again to resume.")
                return EXIT_INTERRUPTED
            except ReidSearchError as err:
                if bar is not None:
                    bar.close()
                    bar = None
                _err(str(err))
                status = EXIT_ERROR
                continue
            finally:
                if bar is not None:
                    bar.close()
            wall = time.perf_counter() - t0
            if last is None:
                continue
            if last.skipped:
                print(f"{video}: already indexed ({last.tracks} tracks).")
            elif last.done:
                print(f"{video}: indexed {last.frames_done} frames, {last.tracks} tracks in {wall:.1f} s "
                      f"({last.frames_done / max(wall, 1e-9):.1f} frames/s).")
                if claimed and last.frames_total < claimed - max(2, round(0.01 * claimed)):
                    _err(f"{video} is truncated or damaged: only {last.frames_total} of the {claimed} frames "
                         "its header claims decode (those were indexed).")
                    status = EXIT_ERROR
            else:
                print(f"{video}: cancelled at frame {last.frames_done} of {last.frames_total}; run the same "
                      "command again to resume.", file=sys.stderr)
                return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        engine.close()
    return status


def _print_result(result: Any, args: argparse.Namespace, header: str) -> None:
    shown = list(result.above(args.threshold))[: args.top]
    if args.json:
        write_json(args.json, shown)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(header, file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    if shown:
        print(hit_table(shown), file=out)
    n_above = len(result.above(args.threshold))
    more = f", {len(shown)} shown" if len(shown) < n_above else ""
    print(f"{n_above} hit(s) at or above similarity {args.threshold:.2f}{more} "
          f"({len(result.hits)} candidate track(s) >= the floor).", file=out)


def cmd_search(args: argparse.Namespace) -> int:
    """Search the library for the person in the query photos."""
    from core.search import DEFAULT_THRESHOLD

    if args.threshold is None:
        args.threshold = DEFAULT_THRESHOLD
    with _engine(args) as engine:
        result = engine.search(args.query, videos=args.video, threshold=args.threshold,
                               top_k=max(args.top, 200))
    n_videos = len(args.video) if args.video else "all indexed"
    header = (f"query {result.query_id}: {len(args.query)} photo(s), {n_videos} video(s), "
              f"{result.elapsed_s:.2f} s")
    _print_result(result, args, header)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """Print a stored query's hits."""
    from core.store import Store

    with Store(args.db) as store:
        record = store.load_query(args.query_id)
    from core.engine import SearchResult

    s = record.summary
    if args.threshold is None:
        args.threshold = s.threshold
    result = SearchResult(query_id=s.id, hits=record.hits, threshold=s.threshold, notes=s.notes,
                          elapsed_s=0.0)
    header = f"query {s.id} ({s.created}): photos {', '.join(s.photos)}"
    _print_result(result, args, header)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """List the library's videos (with their newest run) and saved queries (reads only the database)."""
    from core.store import Store

    db = Path(args.db)
    if not db.exists():
        raise ReidSearchError(f"{db}: no library database here yet (index a video first).")
    with Store(db) as store:
        videos = store.list_videos()
        print(f"library {store.path}")
        print(f"{len(videos)} video(s):")
        rows = [("id", "status", "tracks", "frames", "length", "stride", "reid", "path")]
        for v in videos:
            runs = store.list_runs(v.id)
            run = next((r for r in reversed(runs) if r.status == "done"), runs[-1] if runs else None)
            if run is None:
                rows.append((str(v.id), "not indexed", "0", str(v.frame_count), fmt_time(v.duration_s),
                             "-", "-", v.path))
                continue
            status = ("indexed" if run.status == "done"
                      else f"{run.status} {run.frames_done}/{run.frames_total}")
            rows.append((str(v.id), status, str(run.tracks_done), str(v.frame_count), fmt_time(v.duration_s),
                         str(run.settings.get("stride", "?")), run.reid_name, v.path))
        _print_rows(rows)
        queries = store.list_queries()
        print(f"{len(queries)} saved quer{'y' if len(queries) == 1 else 'ies'}:")
        rows = [("id", "created", "hits", "videos", "photos")]
        for q in queries:
            rows.append((str(q.id), q.created, str(q.hits), ",".join(map(str, q.video_ids)),
                         ", ".join(q.photos)))
        _print_rows(rows)
    return EXIT_OK


def _print_rows(rows: list[tuple[str, ...]]) -> None:
    if len(rows) == 1:
        return
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m core``."""
    from core.index import INDEX_KINDS
    from core.search import DEFAULT_THRESHOLD

    parser = argparse.ArgumentParser(
        prog="python -m core", description="ReID Video Search: index videos, then find a person by photo.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, models: bool = True) -> None:
        p.add_argument("--db", type=Path, default=paths.default_db_path(), metavar="PATH",
                       help="library database (default: %(default)s; $REID_DB overrides)")
        if models:
            p.add_argument("--detector", type=Path, metavar="FILE",
                           help="person detector ONNX file (default: from the manifest)")
            p.add_argument("--reid", type=Path, metavar="FILE",
                           help="ReID ONNX file (default: from the manifest)")
            p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                           help="where the models run (default: auto = CUDA when available)")

    p = sub.add_parser("index", help="index videos (resumable)",
                       description="Index video files, image folders or folders of videos (resumable).")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video file, image folder or folder of videos")
    p.add_argument("--stride", type=_positive, default=2, metavar="N",
                   help="process every N-th frame (default: 2)")
    common(p)
    p.set_defaults(func=cmd_index)

    def output(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threshold", type=_threshold, default=None, metavar="T",
                       help=f"similarity threshold in [0, 1] (default: the calibrated {DEFAULT_THRESHOLD})")
        p.add_argument("--top", type=_positive, default=20, metavar="K",
                       help="show at most K hits (default: 20)")
        p.add_argument("--json", metavar="OUT", help="also write the hits as JSON to OUT ('-': stdout)")

    p = sub.add_parser("search", help="find the person in the query photos",
                       description="Find the person shown in the photos (crops or whole pictures).")
    p.add_argument("--query", nargs="+", required=True, metavar="PHOTO",
                   help="photo(s) of one person; several are combined")
    p.add_argument("--video", action="append", metavar="VIDEO",
                   help="search only this indexed video (repeatable; default: all)")
    p.add_argument("--index", choices=INDEX_KINDS, default="flat",
                   help="FAISS index: flat = exact (default); flat16 = float16 vectors, about twice as "
                        "fast on millions of tracks; ivf = approximate, fastest on very large libraries")
    output(p)
    common(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("list", help="list indexed videos and saved queries")
    common(p, models=False)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show a saved query's hits")
    p.add_argument("query_id", type=int, metavar="QUERY_ID")
    output(p)
    common(p, models=False)
    p.set_defaults(func=cmd_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    # FFmpeg (inside OpenCV) prints its own lines for damaged files ("moov atom not found"); the
    # engine's one-sentence errors say it better. Read when the first video is opened.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    logging.getLogger("core").setLevel(logging.ERROR)  # warnings become the one-line errors below
    try:
        return int(args.func(args))
    except ReidSearchError as err:
        _err(str(err))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted.")
        return EXIT_INTERRUPTED
