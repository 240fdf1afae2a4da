"""Photo collection indexing speed and memory (prints figures; asserts nothing).

Usage (from the project root)::

    python scripts/benchmark_photos.py [--count 200] [--megapixels 12] [--device cpu] [--precision auto]

1. Indexes the 16 Market-1501 camera photos (1920x1080, ``../shared/data/reid_images/
   market1501_songwsx/full_frames``) as a photo collection into a fresh library: photos/s,
   people found, time per stage.
2. Makes ``--count`` large JPEGs (``--megapixels``, 4:3, quality 90, an EXIF camera and time
   as a phone writes them) by upscaling those real photos (in a temporary folder, removed
   afterwards) and indexes them: photos/s, the ETA the first progress items gave against the
   real time, and peak memory (RSS, polled every 50 ms) above what the models already held, to
   show that memory does not grow with the photos.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.engine import Engine  # noqa: E402

MARKET = ROOT.parent / "shared" / "data" / "reid_images" / "market1501_songwsx" / "full_frames"


class PeakRss:
    """The process's largest resident set size while it runs (polled in a thread)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return (self.peak - self.base) / 2**20


def index(engine: Engine, folder: Path) -> dict:
    t0 = time.perf_counter()
    rss = PeakRss()
    first_eta = None
    for item in engine.index(folder):
        if first_eta is None and item.eta_s is not None and item.frames_done >= 8:
            first_eta = (time.perf_counter() - t0, item.eta_s)
        last = item
    wall = time.perf_counter() - t0
    return {"photos": last.frames_done, "people": last.tracks, "wall": wall, "rate": last.frames_done / wall,
            "stages": dict(last.stage_s), "extra_mib": rss.stop(), "first_eta": first_eta}


def report(name: str, r: dict) -> None:
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
    print(f"{name}: {r['photos']} photos, {r['people']} people found in {r['wall']:.1f} s: "
          f"{r['rate']:.2f} photos/s ({stages}); peak RSS +{r['extra_mib']:.0f} MiB over the loaded models")
    if r["first_eta"]:
        at, eta = r["first_eta"]
        print(f"  ETA after {at:.1f} s: {eta:.1f} s left; it took {r['wall'] - at:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        engine = Engine(tmp / "lib.sqlite", device=args.device, precision=args.precision)
        print(f"models: {engine.detector_path.name} ({engine.precision}), {engine.reid_path.name}; "
              f"RSS with models loaded {psutil.Process().memory_info().rss / 2**20:.0f} MiB")
        report("Market-1501 photos (1920x1080)", index(engine, MARKET))
        big = tmp / "big"
        big.mkdir()
        w = int(round((args.megapixels * 1e6 * 4 / 3) ** 0.5))
        h = w * 3 // 4
        sources = sorted(MARKET.glob("*.jpg"))
        t0 = time.perf_counter()
        for i in range(args.count):
            frame = cv2.imread(str(sources[i % len(sources)]))
            frame = cv2.resize(frame[:, 240:1680], (w, h), interpolation=cv2.INTER_CUBIC)  # 4:3 of the 16:9
            exif = Image.Exif()                       # as a phone writes it: camera, time taken
            exif[0x010F] = "BenchCam"
            exif.get_ifd(0x8769)[0x9003] = f"2024:05:01 10:{i // 60 % 60:02d}:{i % 60:02d}"
            Image.fromarray(frame[:, :, ::-1]).save(big / f"IMG_{i:05d}.jpg", quality=90, exif=exif)
        size = sum(p.stat().st_size for p in big.iterdir()) / 2**20
        print(f"made {args.count} JPEGs of {w}x{h} ({size:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
        report(f"{args.count} photos of {w * h / 1e6:.1f} MP", index(engine, big))
        engine.close()


if __name__ == "__main__":
    main()
