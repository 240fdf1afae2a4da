"""Command line: ``python -m core index | search | refine | list | show | link | export | repair``.

::

    python -m core index VIDEO... [--db PATH] [--rate R | --stride N] [--no-motion-gate]
                                  [--workers N] [--precision auto|int8|fp16|fp32] [--tracker NAME]
                                  [--detector FILE] [--reid FILE] [--device auto|cpu|cuda]
    python -m core search (--query PHOTO... | --like VIDEO:TRACK) [--db PATH] [--video VIDEO]...
                          [--threshold T] [--top K] [--index flat|flat16|ivf]
                          [--json OUT] [--detector FILE] [--reid FILE] [--device ...]
    python -m core refine QUERY_ID [--confirm HIT...] [--reject HIT...] [--clear HIT...] [--db PATH]
                          [--threshold T] [--top K] [--json OUT] [--detector FILE] [--reid FILE]
                          [--device ...]
    python -m core list [--db PATH]
    python -m core show QUERY_ID [--db PATH] [--threshold T] [--top K] [--json OUT]
    python -m core export QUERY_ID --out FOLDER [--clips] [--margin S] [--no-boxes] [--db PATH]
                          [--threshold T] [--top K]
    python -m core repair [--db PATH]
    python -m core link [--db PATH] [--video VIDEO]... [--force]

A ``HIT`` of ``refine`` is ``TRACK`` (a track id of the hit, when the query searched one video)
or ``VIDEO:TRACK`` (``VIDEO`` a path or database id, as ``list`` shows); ``--like`` takes the
same ``VIDEO:TRACK``.

``VIDEO`` is a video file, a folder of images (one image sequence), or a folder of
videos. A folder is a folder of videos when it holds at least one file with a video
ending (``core.video.VIDEO_EXTENSIONS``, any case): each of those is indexed, in natural name
order (sub-folders and other files are ignored). A folder without video files is an
image sequence (its images, see ``core.video.IMAGE_EXTENSIONS``, are the frames).

Several videos are indexed by ``--workers`` worker processes at once (default: from the
number of cores, see ``core.parallel.default_workers``), with one progress bar per video
being indexed and one for the whole batch.

Exit status: 0 success, 1 an error (one line ``error: ...`` on stderr; with several
videos the others are still indexed), 2 bad command-line arguments, 130 interrupted.
Ctrl-C while indexing stops after the current frame and saves the progress; run the
same command again to resume. A second Ctrl-C stops at once (the last checkpoint is
kept, so the run still resumes).

``--json OUT`` writes the hits at or above the threshold, best first, in the format of
:mod:`core.export` (``-`` writes it to stdout instead of the table).

Every command is a thin caller of the engine's use cases: ``index`` runs
:meth:`core.engine.Engine.index_many`, ``search`` :meth:`~core.engine.Engine.search` (or
:meth:`~core.engine.Engine.search_like`), ``refine`` :meth:`~core.engine.Engine.refine`,
``list``, ``show``, ``link`` and ``export`` the model-free :class:`core.library.Library`
(``export`` through :func:`core.clips.export_evidence`), ``repair``
:func:`core.repair.repair_library` (a damaged library is replaced by what can be saved of it;
the damaged file is kept beside it). After the hits, ``search``, ``refine`` and ``show`` print
the result's own sentence (:meth:`core.library.SearchResult.explain`): what was found, or the
best score found and what to do.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core import paths
from core.cli_args import arg_detect_size, arg_hit_ref, arg_positive, arg_rate, arg_seconds, arg_threshold
from core.cli_output import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    IndexBars,
    hit_table,
    print_error,
    print_rows,
    report,
)
from core.errors import ReidSearchError
from core.text import format_time, plural
from core.types import IndexProgress, IndexStarted

if TYPE_CHECKING:
    from core.engine import Engine
    from core.library import SearchResult



# --------------------------------------------------------------------------- helpers


def _engine(args: argparse.Namespace) -> Engine:
    from core.engine import Engine
    from core.tracking import DEFAULT_TRACKER

    engine = Engine(args.db, detector=args.detector, reid=args.reid, device=args.device,
                    precision=args.precision, stride=getattr(args, "stride", None),
                    rate=getattr(args, "rate", None), motion_gate=getattr(args, "motion_gate", True),
                    tracker=getattr(args, "tracker", DEFAULT_TRACKER), detect_size=args.detect_size,
                    index_kind=getattr(args, "index", "flat"), workers=getattr(args, "workers", None),
                    images=getattr(args, "images", "auto"))
    for note in engine.notes:
        print(f"note: {note}", file=sys.stderr)
    return engine


# --------------------------------------------------------------------------- commands


def cmd_index(args: argparse.Namespace) -> int:
    """Index each video (a failing one does not stop the others)."""
    from core.video import expand_sources

    videos = expand_sources(args.videos)
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
    bars = IndexBars(len(videos))
    current: list[str] = []
    try:
        for event in engine.index_many(videos, cancel=cancel):
            if isinstance(event, IndexStarted):
                current.append(event.video_path)
            elif isinstance(event, IndexProgress):
                if event.note:
                    print(f"note: {event.note}", file=sys.stderr)
                bars.show(event)
            else:
                bars.end(event.video_path)
                if event.video_path in current:
                    current.remove(event.video_path)
                status = max(status, report(event))
    except KeyboardInterrupt:
        bars.close()
        print_error(f"{', '.join(current) or 'indexing'}: interrupted; run the same command again to resume.")
        return EXIT_INTERRUPTED
    finally:
        bars.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        engine.close()
    return status


def _print_result(result: SearchResult, args: argparse.Namespace, header: str) -> None:
    from core.export import write_json

    shown = list(result.above(args.threshold))[: args.top]
    if args.json:
        write_json(shown, args.json)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(header, file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    if shown:
        print(hit_table(shown), file=out)
    n_above = len(result.above(args.threshold))
    more = f"; {len(shown)} shown (--top)" if len(shown) < n_above else ""
    print(f"{result.explain(args.threshold)} {plural(len(result.hits), 'candidate')} in all{more}.", file=out)


def cmd_search(args: argparse.Namespace) -> int:
    """Search the library for the person in the query photos."""
    from core.search import DEFAULT_THRESHOLD

    if args.threshold is None:
        args.threshold = DEFAULT_THRESHOLD
    with _engine(args) as engine:
        if args.like is not None:
            ref = args.like
            if not isinstance(ref, tuple):
                raise ReidSearchError(f"--like {ref}: name the video too (VIDEO:TRACK).")
            result = engine.search_like(ref[0], ref[1], videos=args.video, threshold=args.threshold,
                                        top_k=max(args.top, 200))
            what = f"similar to {Path(str(ref[0])).name} track {ref[1]}"
        else:
            result = engine.search(args.query, videos=args.video, threshold=args.threshold,
                                   top_k=max(args.top, 200))
            what = plural(len(args.query), "photo")
    where = plural(len(args.video), "video") if args.video else "all indexed videos"
    saved = f"query {result.query_id}" if result.query_id is not None else "search (not saved)"
    header = f"{saved}: {what}, {where}, {result.elapsed_s:.2f} s"
    _print_result(result, args, header)
    return EXIT_OK


def cmd_refine(args: argparse.Namespace) -> int:
    """Confirm / reject hits of a saved search and print its new ranking."""
    if not (args.confirm or args.reject or args.clear):
        raise ReidSearchError("say which hits to --confirm, --reject or --clear.")
    with _engine(args) as engine:
        result = engine.refine(args.query_id, confirm=args.confirm or (), reject=args.reject or (),
                               clear=args.clear or (), top_k=max(args.top, 200))
    if args.threshold is None:
        args.threshold = result.threshold
    marks = sum(h.mark == "confirmed" for h in result.hits)
    header = (f"query {result.query_id}: re-ranked with {plural(marks, 'confirmed hit')} and "
              f"{plural(len(result.rejected), 'rejected hit')}, {result.elapsed_s:.2f} s")
    _print_result(result, args, header)
    return EXIT_OK


def cmd_link(args: argparse.Namespace) -> int:
    """Link the tracks of indexed videos into people (model-free; runs already linked are skipped)."""
    with _library(args.db) as library:
        done = library.link(args.video, force=args.force)
        if not done:
            print("every indexed video is linked already (--force links again).")
        for video, rec in done:
            run = library.store.get_run(rec.run_id)
            people = plural(rec.people, "person", "people")
            print(f"{video.path}: {plural(run.tracks_done, 'track')} -> {people} "
                  f"in {rec.elapsed_s * 1000:.0f} ms (run {rec.run_id}, {run.reid_name}).")
    return EXIT_OK


def _library(db: Path):
    from core.library import Library

    if not Path(db).exists():
        raise ReidSearchError(f"{db}: no library database here yet (index a video first).")
    return Library.open(db)


def cmd_show(args: argparse.Namespace) -> int:
    """Print a stored query's hits."""
    with _library(args.db) as library:
        result = library.load_query(args.query_id)
    if args.threshold is None:
        args.threshold = result.threshold
    header = f"query {result.query_id} ({result.created}): photos {', '.join(result.photos)}"
    _print_result(result, args, header)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write a stored query's hits as evidence: contact sheet, CSV, record, and clips with ``--clips``."""
    from tqdm import tqdm

    from core.clips import ExportOptions, ExportProgress, export_evidence

    with _library(args.db) as library:
        result = library.load_query(args.query_id)
        threshold = result.threshold if args.threshold is None else args.threshold
        hits = list(result.above(threshold))[: args.top]
        options = ExportOptions(clips=args.clips, margin_s=args.margin, boxes=not args.no_boxes)
        bar = None
        try:
            for item in export_evidence(hits, args.out, library=library, query=result, threshold=threshold,
                                        options=options):
                if isinstance(item, ExportProgress):
                    if bar is None:
                        bar = tqdm(total=item.total, unit="frame", file=sys.stderr, dynamic_ncols=True)
                    bar.set_description(item.text, refresh=False)
                    bar.update(item.done - bar.n)
                else:
                    if bar is not None:
                        bar.close()
                        bar = None
                    print(f"query {result.query_id}: {plural(item.hits, 'hit')} at or above {threshold:.2f} "
                          f"exported to {item.folder} ({plural(len(item.clips), 'clip')}, contact sheet "
                          f"{item.sheet.name}, record {item.record.name}).")
        finally:
            if bar is not None:
                bar.close()
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """List the library's videos (with the run that counts) and saved queries (reads only the database)."""
    with _library(args.db) as library:
        videos = library.videos()
        print(f"library {library.path}")
        print(f"{plural(len(videos), 'video')}:")
        rows = [("id", "status", "tracks", "frames", "length", "stride", "reid", "path")]
        for v in videos:
            run = v.run
            if run is None:
                rows.append((str(v.id), "not indexed", "0", str(v.frame_count), format_time(v.duration_s),
                             "-", "-", v.path))
                continue
            status = ("indexed" if run.status == "done"
                      else f"{run.status} {run.frames_done}/{run.frames_total}")
            rows.append((str(v.id), status, str(run.tracks_done), str(v.frame_count),
                         format_time(v.duration_s), str(run.settings.get("stride", "?")), run.reid_name,
                         v.path))
        print_rows(rows)
        queries = library.queries()
        print(f"{plural(len(queries), 'saved query', 'saved queries')}:")
        rows = [("id", "created", "candidates", "videos", "photos")]  # "find similar": its label
        for q in queries:
            rows.append((str(q.id), q.created, str(q.hits), ",".join(map(str, q.video_ids)),
                         ", ".join(q.photos)))
        print_rows(rows)
    return EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    """Check the library and, when it is damaged, replace it by what can be saved of it."""
    from core.repair import repair_library

    report = repair_library(args.db, progress=lambda line: print(f"  {line}", file=sys.stderr))
    if report.salvage is None:
        print(f"{report.library}: not damaged (SQLite's quick check found nothing); nothing to repair.")
        return EXIT_OK
    print(f"{report.library} was damaged ({report.problems[0]}); saved what was readable into a new "
          "library under the same name:")
    rows = [("table", "saved", "of", "share")]
    for t in report.salvage.tables:
        of = t.counted if t.counted is not None else t.read + t.unreadable
        share = f"{100.0 * t.kept / of:.1f} %" if of else "-"
        rows.append((t.name, str(t.kept), str(of), share))
    print_rows(rows)
    damaged = report.salvage.runs_damaged
    print(f"{plural(len(report.salvage.runs_intact), 'indexing run')} intact; "
          + (f"{plural(len(damaged), 'run')} lost tracks (run {', '.join(map(str, damaged))}): "
             "index those videos again to get them back." if damaged else "none lost tracks."))
    print(f"the damaged file is kept as {report.kept}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m core``."""
    from core.index import INDEX_KINDS
    from core.index_settings import DEFAULT_RATE, IndexSettings
    from core.models.derived import PRECISIONS
    from core.photos import IMAGE_KINDS
    from core.search import DEFAULT_THRESHOLD
    from core.tracking import DEFAULT_TRACKER, TRACKERS

    called = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(
        prog=called if called.startswith("reid-search") else "python -m core",
        description="ReID Video Search: index videos, then find a person by photo.")
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
            p.add_argument("--precision", choices=PRECISIONS, default="auto",
                           help="detector precision (default: auto = int8 on the CPU, fp16 on CUDA; fp32 "
                                "where int8 is not faster, e.g. CPUs without AVX-512 VNNI / AVX-VNNI)")
            p.add_argument("--detect-size", type=arg_detect_size, default=None, metavar="PIXELS",
                           help="longest side of the detector's input, a multiple of 32 (default: the "
                                "model's own, 640); 960 or 1280 find people far from an HD camera, at "
                                "2.5x or 5x the cost")

    p = sub.add_parser("index", help="index videos (resumable)",
                       description="Index video files, image folders or folders of videos (resumable).")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video file, image folder or folder of videos")
    sampling = p.add_mutually_exclusive_group()
    sampling.add_argument("--rate", type=arg_rate, default=None, metavar="R",
                          help=f"process R frames per second of video (default: {DEFAULT_RATE:g}, i.e. "
                               + ", ".join(f"stride {IndexSettings().stride_for(fps)} at {fps} fps"
                                           for fps in (10, 25, 30)) + ")")
    sampling.add_argument("--stride", type=arg_positive, default=None, metavar="N",
                          help="process every N-th frame instead (whatever the frame rate)")
    p.add_argument("--no-motion-gate", dest="motion_gate", action="store_false",
                   help="run the detector on every processed frame, also where nothing moves")
    p.add_argument("--workers", type=arg_positive, default=None, metavar="N",
                   help="index N videos at once in worker processes (default: from the number of cores)")
    p.add_argument("--tracker", choices=sorted(TRACKERS), default=DEFAULT_TRACKER,
                   help="tracker linking detections into tracks (default: %(default)s)")
    p.add_argument("--images", choices=IMAGE_KINDS, default="auto",
                   help="read a folder of images as video frames (sequence) or as photos, each person of "
                        "each photo on their own (default: auto, from the images' sizes, names and EXIF)")
    common(p)
    p.set_defaults(func=cmd_index)

    def output(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threshold", type=arg_threshold, default=None, metavar="T",
                       help=f"similarity threshold in [0, 1] (default: the calibrated {DEFAULT_THRESHOLD})")
        p.add_argument("--top", type=arg_positive, default=20, metavar="K",
                       help="show at most K hits (default: 20)")
        p.add_argument("--json", metavar="OUT", help="also write the hits as JSON to OUT ('-': stdout)")

    p = sub.add_parser("search", help="find the person in the query photos (or of a hit)",
                       description="Find the person shown in the photos (crops or whole pictures), or the "
                                   "person of a hit (--like).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--query", nargs="+", metavar="PHOTO",
                      help="photo(s) of one person; several are combined")
    what.add_argument("--like", type=arg_hit_ref, metavar="VIDEO:TRACK",
                      help="find similar: the person of this track (its linked tracks too) is the query")
    p.add_argument("--video", action="append", metavar="VIDEO",
                   help="search only this indexed video (repeatable; default: all)")
    p.add_argument("--index", choices=INDEX_KINDS, default="flat",
                   help="FAISS index: flat = exact (default); flat16 = float16 vectors, about twice as "
                        "fast on millions of tracks; ivf = approximate, fastest on very large libraries")
    output(p)
    common(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("refine", help="confirm / reject hits of a saved search and re-rank it",
                       description="Mark hits of a saved search as the person (--confirm) or not (--reject), "
                                   "or take a mark back (--clear); the search is re-ranked at once and kept.")
    p.add_argument("query_id", type=int, metavar="QUERY_ID")
    for flag, what_ in (("--confirm", "are the person"), ("--reject", "are not the person"),
                        ("--clear", "lose their mark")):
        p.add_argument(flag, nargs="+", type=arg_hit_ref, metavar="HIT",
                       help=f"hits (TRACK or VIDEO:TRACK) that {what_}")
    output(p)
    common(p)
    p.set_defaults(func=cmd_refine)

    p = sub.add_parser("list", help="list indexed videos and saved queries")
    common(p, models=False)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("link", help="link the tracks of indexed videos into people",
                       description="Link each indexed video's tracks into people (done after indexing; for "
                                   "libraries indexed before). Needs no model.")
    p.add_argument("--video", action="append", metavar="VIDEO",
                   help="only this video (repeatable; default: all)")
    p.add_argument("--force", action="store_true", help="link again videos already linked")
    common(p, models=False)
    p.set_defaults(func=cmd_link)

    p = sub.add_parser("repair", help="save what is readable of a damaged library",
                       description="Check the library; when it is damaged, save every readable row into "
                                   "a new library under the same name and keep the damaged file beside it.")
    common(p, models=False)
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("show", help="show a saved query's hits")
    p.add_argument("query_id", type=int, metavar="QUERY_ID")
    output(p)
    common(p, models=False)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="write a saved query's hits as clips, a contact sheet and a record",
                       description="Write the hits of a saved query into a folder: a contact sheet, "
                                   "hits.csv, the query photos and export.json (which photos, models and "
                                   "threshold produced them); with --clips an MP4 of each segment too.")
    p.add_argument("query_id", type=int, metavar="QUERY_ID")
    p.add_argument("--out", type=Path, required=True, metavar="FOLDER", help="export folder (created)")
    p.add_argument("--clips", action="store_true", help="also write an MP4 clip of each segment")
    p.add_argument("--margin", type=arg_seconds, default=2.0, metavar="S",
                   help="seconds kept before and after each segment (default: 2)")
    p.add_argument("--no-boxes", action="store_true", help="do not draw the person's box into the clips")
    p.add_argument("--threshold", type=arg_threshold, default=None, metavar="T",
                   help="export hits at or above T (default: the query's own threshold)")
    p.add_argument("--top", type=arg_positive, default=200, metavar="K",
                   help="export at most K hits (default: 200)")
    common(p, models=False)
    p.set_defaults(func=cmd_export)
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
        print_error(str(err))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print_error("interrupted.")
        return EXIT_INTERRUPTED
