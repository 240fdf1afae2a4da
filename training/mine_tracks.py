"""Build a ReID training set from videos the app indexed: every track becomes a pseudo-identity.

Usage::

    python -m training.mine_tracks --db LIBRARY.sqlite --out DIR [--min-track-len N] [--max-crops K]

For each video of the library (its newest finished indexing run), each track with at
least ``--min-track-len`` sightings gets a folder ``DIR/v<video>_t<track>/`` holding up
to ``--max-crops`` crops, evenly spread over the track, cut from the video at the
stored sighting boxes and named ``c<video id>_f<frame>.jpg``: the camera id is the video
id. ``DIR`` is then a ``generic`` dataset (``data.dataset=generic data.root=DIR``);
``DIR/mined.json`` records where every identity came from.

Pseudo-labels are noisy: a person who leaves and comes back, or appears in two videos,
becomes several identities, and a tracker identity switch mixes two people in one.
The library is read through ``core.store`` (opening an older library upgrades its schema).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from training.cli import run_main
from training.errors import DataError


def spread(n: int, k: int) -> np.ndarray:
    """``k`` indices evenly spread over ``range(n)`` (all of them when ``k`` is 0 or >= n)."""
    if k <= 0 or k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def mine_tracks(db: str | Path, out: str | Path, *, min_track_len: int = 8, max_crops: int = 16,
                min_height: int = 48, video_ids: Sequence[int] | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Write track crops of an indexed library as identity folders.

    Args:
        db: The app's library database (``.sqlite``).
        out: Output folder (created; existing identity folders are overwritten file by file).
        min_track_len: Skip tracks with fewer sightings.
        max_crops: Crops per track, evenly spread over its sightings (0: all).
        min_height: Skip boxes shorter than this many pixels (after clipping to the frame).
        video_ids: Only these videos (default: all with a finished run).
        progress: Show a tqdm bar per video.

    Returns:
        Summary: ``{"identities", "images", "videos", "skipped"}`` (skipped: one sentence each).

    Raises:
        DataError: The database file does not exist.
        StoreError: It is not a library of this program.
    """
    from core.store import Store

    db = Path(db)
    if not db.is_file():
        raise DataError(f"{db}: no such library database")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"identities": 0, "images": 0, "videos": 0, "skipped": [], "tracks": []}
    store = Store(db)
    try:
        videos = store.list_videos()
        if video_ids is not None:
            wanted = {int(v) for v in video_ids}
            unknown = wanted - {v.id for v in videos}
            if unknown:
                ids = ", ".join(map(str, sorted(unknown)))
                raise DataError(f"{db}: no video with id {ids} in this library")
            videos = [v for v in videos if v.id in wanted]
        for video in videos:
            run = store.latest_run(video.id)
            if run is None:
                summary["skipped"].append(f"{video.path}: no finished indexing run")
                continue
            if not Path(video.path).exists():
                summary["skipped"].append(f"{video.path}: video file not found")
                continue
            # frame -> [(identity folder, box)] for the chosen sightings of every long-enough track
            wanted_frames: dict[int, list[tuple[Path, np.ndarray]]] = defaultdict(list)
            for track in store.tracks(run.id):
                if track.n_sightings < min_track_len:
                    continue
                s = store.sightings(track.pk)
                tall = np.flatnonzero(s.boxes[:, 3] - s.boxes[:, 1] >= min_height)
                if len(tall) < min_track_len:
                    continue
                folder = out / f"v{video.id:03d}_t{track.track_id:05d}"
                for i in tall[spread(len(tall), max_crops)]:
                    wanted_frames[int(s.frames[i])].append((folder, s.boxes[i]))
                summary["tracks"].append({"folder": folder.name, "video_id": video.id, "video": video.path,
                                          "run_id": run.id, "track_id": track.track_id,
                                          "first_s": track.first_s, "last_s": track.last_s})
            if not wanted_frames:
                summary["skipped"].append(f"{video.path}: no track with {min_track_len}+ sightings")
                continue
            written = cut_crops(video.path, video.id, wanted_frames, progress)
            summary["images"] += written
            summary["videos"] += 1
        summary["identities"] = sum(1 for t in summary["tracks"] if (out / t["folder"]).is_dir())
    finally:
        store.close()
    (out / "mined.json").write_text(json.dumps(summary, indent=1))
    return summary


def cut_crops(path: str, video_id: int, wanted: dict[int, list[tuple[Path, np.ndarray]]],
              progress: bool = True) -> int:
    """Decode the video once up to the last needed frame and write the crops; returns how many.

    Args:
        path: The video (file or image folder).
        video_id: Its library id (the ``c<id>`` camera token of the file names).
        wanted: Frame index -> ``[(identity folder, (4,) xyxy box)]``; each crop is written to
            ``folder/c<video_id>_f<frame:06d>.jpg`` (boxes clipped to the frame; tiny ones skipped).
        progress: Show a tqdm bar.
    """
    from core.video import open_source

    written = 0
    last = max(wanted)
    with open_source(path) as src:
        bar = tqdm(total=len(wanted), desc=Path(path).name, unit="frame", disable=not progress, leave=False)
        for frame in src.iter_frames(1, min(wanted)):
            if frame.index > last:
                break
            for folder, box in wanted.get(frame.index, ()):
                h, w = frame.image.shape[:2]
                x1, y1 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
                x2, y2 = min(w, int(round(box[2]))), min(h, int(round(box[3])))
                if x2 - x1 < 4 or y2 - y1 < 4:
                    continue
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f"c{video_id}_f{frame.index:06d}.jpg"), frame.image[y1:y2, x1:x2])
                written += 1
            if frame.index in wanted:
                bar.update(1)
        bar.close()
    return written


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of ``python -m training.mine_tracks``."""
    p = argparse.ArgumentParser(prog="python -m training.mine_tracks", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, help="the app's library database (.sqlite)")
    p.add_argument("--out", required=True, help="output folder (generic dataset layout)")
    p.add_argument("--min-track-len", dest="min_track_len", type=int, default=8,
                   help="skip tracks with fewer sightings (default 8)")
    p.add_argument("--max-crops", dest="max_crops", type=int, default=16,
                   help="crops per track, evenly spread (default 16; 0: all)")
    p.add_argument("--min-height", dest="min_height", type=int, default=48,
                   help="skip boxes shorter than this many pixels (default 48)")
    p.add_argument("--video", dest="videos", type=int, action="append",
                   help="only this video id (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the miner; returns the exit status."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        s = mine_tracks(args.db, args.out, min_track_len=args.min_track_len, max_crops=args.max_crops,
                        min_height=args.min_height, video_ids=args.videos, progress=not args.quiet)
        for note in s["skipped"]:
            print(f"skipped {note}")
        print(f"wrote {s['images']} crops of {s['identities']} pseudo-identities from {s['videos']} videos "
              f"to {args.out}")
        return 0

    return run_main(body, "mining tracks")


if __name__ == "__main__":
    sys.exit(main())
