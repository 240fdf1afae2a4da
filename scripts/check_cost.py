"""What the library check on open costs on a large library (prints figures; asserts nothing).

Usage (from the project root)::

    python scripts/check_cost.py [--sightings 1e6] [--db FILE]

Builds (or reuses, with ``--db``) a library of ``--sightings`` sightings in tracks of 50, four
512-d embeddings per track, written through ``Store.checkpoint`` as indexing writes them, then
times side by side: SQLite's ``PRAGMA quick_check`` (what the first open after a change runs),
``PRAGMA integrity_check`` (what it would cost to also compare indexes with tables), opening
the library when it changed since its last check, and opening it unchanged (two ``stat``
calls against the stamp, see ``core.store.health``).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from core.store import NewTrack, Store
from core.store.health import stamp_path

PER_TRACK, K, DIM = 50, 4, 512


def build(db: Path, sightings: int) -> None:
    rng = np.random.default_rng(0)
    with Store(db) as store:
        video = store.upsert_video("/videos/big.mp4", "fp-big", fps=25.0, frame_count=10**7, width=1920,
                                   height=1080)
        run = store.create_run(video.id, detector_name="d", detector_sha256="d" * 64, reid_name="osnet",
                               reid_sha256="r" * 64, embedding_dim=DIM, settings={"stride": 2},
                               settings_key="k", frames_total=10**7)
        batch = []
        for t in range(sightings // PER_TRACK):
            frames = list(range(t * 20, t * 20 + 2 * PER_TRACK, 2))
            vec = rng.normal(size=(K, DIM)).astype(np.float32)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            batch.append(NewTrack(track_id=t + 1, frames=frames, times_s=[f / 25 for f in frames],
                                  boxes=rng.uniform(0, 1000, (PER_TRACK, 4)).astype(np.float32),
                                  scores=rng.uniform(0.3, 1, PER_TRACK), emb_frames=frames[:K], vectors=vec,
                                  quality=rng.uniform(0, 1, K)))
            if len(batch) == 500:
                store.checkpoint(run.id, frames_done=frames[-1], tracks=batch)
                batch = []
        store.checkpoint(run.id, frames_done=10**7, tracks=batch, status="done")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def pragma(db: Path, name: str) -> None:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute(f"PRAGMA {name}").fetchone()[0] == "ok"
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sightings", type=float, default=1e6)
    parser.add_argument("--db", type=Path, help="library to measure (built when missing)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "big.sqlite"
        if not db.exists():
            print(f"building a library of {int(args.sightings)} sightings ...", flush=True)
            print(f"  built in {timed(lambda: build(db, int(args.sightings))):.1f} s")
        print(f"library {db}: {db.stat().st_size / 2**20:.0f} MiB")
        print(f"PRAGMA quick_check             {timed(lambda: pragma(db, 'quick_check')):7.3f} s")
        print(f"PRAGMA integrity_check         {timed(lambda: pragma(db, 'integrity_check')):7.3f} s")
        stamp_path(db).unlink(missing_ok=True)
        print(f"open, changed since its check  {timed(lambda: Store(db).close()):7.3f} s")
        print(f"open, unchanged                {timed(lambda: Store(db).close()):7.3f} s")


if __name__ == "__main__":
    main()
