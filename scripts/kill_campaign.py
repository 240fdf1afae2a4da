"""SIGKILL `python -m core index` at random moments: the library survives and ends as an uninterrupted run.

Usage (from the project root)::

    python scripts/kill_campaign.py [VIDEO] [--frames 240] [--kills 10] [--seed 0] [--device cpu]

1. The first ``--frames`` frames of VIDEO (default ``../shared/data/video/vtest.avi``) are cut to
   an mp4v clip, and ``python -m core index`` indexes it into a fresh library (the reference).
2. ``python -m core index`` indexes it again into a second library and is killed with SIGKILL at
   a random moment (uniform over the reference's wall time, after the models have loaded),
   ``--kills`` times; each run resumes the last; then one run is left to finish.
3. After every kill: ``PRAGMA integrity_check``, and every track whole (its sighting count and
   first/last frame agree with its sightings, it has embeddings). At the end the tracks,
   sightings and embeddings are compared with the reference (embeddings to 1e-6).

Prints one line per kill and the totals; exit status 1 when a library was damaged or the end
result differs.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from core.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REID_SHARED_DATA", ROOT.parent / "shared" / "data"))


def cut(video: Path, out: Path, frames: int) -> Path:
    cap = cv2.VideoCapture(str(video))
    writer = None
    for _ in range(frames):
        ok, frame = cap.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    cap.release()
    return out


def index(clip: Path, db: Path, device: str, kill_after: float | None = None) -> tuple[int, float]:
    """Run ``python -m core index`` (killed ``kill_after`` s after its first progress output); (rc, s)."""
    env = dict(os.environ, REID_MODELS_DIR=os.environ.get("REID_MODELS_DIR", str(SHARED / "models")))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "core", "index", str(clip), "--db", str(db), "--device",
                             device], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is not None:
        proc.stderr.read(1)  # the progress bar's first character: models loaded, indexing under way
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc.returncode, time.perf_counter() - t0


def whole(db: Path) -> bool:
    con = sqlite3.connect(db)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        bad = con.execute("""SELECT COUNT(*) FROM tracks t WHERE
            (SELECT COUNT(*) FROM sightings s WHERE s.track_pk = t.id) != t.n_sightings
            OR (SELECT MIN(frame) FROM sightings s WHERE s.track_pk = t.id) != t.first_frame
            OR (SELECT MAX(frame) FROM sightings s WHERE s.track_pk = t.id) != t.last_frame
            OR NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.track_pk = t.id)""").fetchone()[0]
        return ok and bad == 0
    finally:
        con.close()


def result(db: Path) -> dict:
    with Store(db) as store:
        (run,) = store.list_runs()
        emb = store.embedding_rows([run.id])
        out = {"status": run.status}
        for t in store.tracks(run.id):
            s = store.sightings(t.pk)
            mine = emb.track_pks == t.pk
            out[t.track_id] = (s.frames, s.boxes, emb.frames[mine], emb.vectors[mine])
        return out


def same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys() or a["status"] != b["status"]:
        return False
    return all(np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1])
               and np.array_equal(a[k][2], b[k][2]) and np.allclose(a[k][3], b[k][3], atol=1e-6)
               for k in a if k != "status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=SHARED / "video" / "vtest.avi")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="reid-kills-") as tmp:
        clip = cut(args.video, Path(tmp) / "clip.mp4", args.frames)
        rc, wall = index(clip, Path(tmp) / "reference.sqlite", args.device)
        print(f"reference: {args.frames} frames indexed in {wall:.0f} s (exit {rc})", flush=True)
        db = Path(tmp) / "killed.sqlite"
        damaged = landed = 0
        for k in range(1, args.kills + 1):
            at = rng.uniform(0.5, 0.6 * wall)
            rc, _ = index(clip, db, args.device, kill_after=at)
            landed += rc == -signal.SIGKILL
            ok = db.exists() and whole(db)
            damaged += not ok
            with Store(db) as store:
                runs = store.list_runs()
                where = f"frame {runs[0].frames_done}, {runs[0].tracks_done} tracks" if runs else "no run yet"
            print(f"kill {k}: {at:.1f} s into indexing (exit {rc}); library {'whole' if ok else 'DAMAGED'}, "
                  f"{where}", flush=True)
        rc, _ = index(clip, db, args.device)
        identical = same(result(db), result(Path(tmp) / "reference.sqlite"))
        print(f"{landed} kills landed (of {args.kills}), {damaged} damaged libraries; the resumed library is "
              f"{'identical to' if identical else 'DIFFERENT from'} the uninterrupted one")
    return 0 if identical and not damaged else 1


if __name__ == "__main__":
    sys.exit(main())
