"""Feed mutated videos, photos and model files to the engine's loaders; count what happens.

Usage (from the project root)::

    python scripts/fuzz.py [--inputs 200 | --seconds 600] [--seed 0] [--targets video,photo,model]
                           [--timeout 30] [--json OUT] [--keep DIR]

Seeds, all made from real files: a short head of ``../shared/data/video/vtest.avi``
(MP43 AVI, cut after 256 KiB, so without its index), an H.264 MP4 with B-frames
written from vtest frames by PyAV's libx264, ``assets/sample_query.jpg`` (and the same
photo as PNG), two small real ONNX models (a YOLO-shaped detector and a ReID-shaped
model, with the metadata the engine reads) and the shared OSNet ReID model.

Each input is a seed changed by 1-3 seeded mutations: bit flips, runs of random,
zero or 0xFF bytes, truncation, a chunk spliced in from elsewhere in the file or from
another seed, inserted or deleted bytes; positions favour the first and last few KiB,
where containers keep their headers. ONNX seeds also get *metadata* mutations: the
model rewritten with odd metadata values (wrong types, negative or huge numbers,
deeply nested literals).

Targets, each run in its own worker process (so a crash is seen, not suffered):

* ``video``: ``core.video.fingerprint``, ``open_source``, ``iter_frames`` (up to 40
  frames, checking every frame is ``(H, W, 3)`` uint8 in increasing order), ``read`` of
  a middle frame and of frame 0, ``verify``.
* ``photo``: ``core.search.load_photo`` and, when it loads, ``embed_photo`` with the
  shared detector and ReID model.
* ``model``: ``core.onnx_model.load_session``, the ``YoloOnnxDetector`` and
  ``OnnxEmbedder`` constructors and, for what loads, one detection or embedding.

Outcomes: ``ok`` (a result), ``error`` (a ``core.errors.ReidSearchError`` whose
sentence names the file), ``unnamed`` (such an error not naming the file),
``unrelated`` (any other exception: a bug), ``crash`` (the worker died of a signal),
``hang`` (no answer within ``--timeout`` seconds; the worker is killed and restarted).
Inputs of the last three kinds are saved under ``--keep`` (default: a ``findings``
folder in the work folder). The exit status is 1 when any input crashed, hung or
raised an unrelated exception.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REID_SHARED_DATA", ROOT.parent / "shared" / "data"))
TARGETS = ("video", "photo", "model")
BAD = ("unrelated", "crash", "hang")
MEMORY_LIMIT = 8 << 30
"""Address-space limit of a worker: a file asking for a giant allocation fails there, not the machine."""

ODD_VALUES = ("", "-5", "0", "1e309", "nan", "None", "'abc'", "[1, 'a']", "{'x': 1}", "{0: None}", "()",
              "[0, 0]", "[99999999, 99999999]", "{0: 'person', 'one': 'x'}", "[[1]]", "[640]", "True",
              "[" * 5000 + "]" * 5000, "{" * 3000, "\x00\xff", "[1.5, 2.5]", "[-640, 640]", "\"RGB\"", "RGBA")


# --------------------------------------------------------------------------- seeds


def _vtest_frames(count: int, size: tuple[int, int]) -> list:
    import cv2

    cap = cv2.VideoCapture(str(SHARED / "video" / "vtest.avi"))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def write_h264(path: Path, frames: list, fps: int = 10) -> Path:
    """Write BGR frames as an H.264 MP4 with B-frames (PyAV's bundled libx264)."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"bf": "2", "g": "12", "preset": "veryfast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_tiny_models(folder: Path) -> list[Path]:
    """A YOLO-shaped detector and a ReID-shaped model (real ONNX, tiny weights, the engine's metadata)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def save(name: str, nodes, out_shape, weights, metadata: dict[str, str]) -> Path:
        x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "h", "w"])
        y = helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)
        graph = helper.make_graph(nodes, name, [x], [y], initializer=weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        path = folder / f"{name}.onnx"
        onnx.save(model, str(path))
        return path

    det_w = numpy_helper.from_array(rng.uniform(0, 1, (5, 3, 1, 1)).astype(np.float32), "w")
    det_shape = numpy_helper.from_array(np.array([0, 5, -1], np.int64), "shape")
    detector = save("tiny_detector", [helper.make_node("Conv", ["images", "w"], ["c"]),
                                      helper.make_node("Reshape", ["c", "shape"], ["out"])],
                    ["batch", 5, "anchors"], [det_w, det_shape],
                    {"names": "{0: 'person'}", "imgsz": "[64, 64]", "stride": "32", "task": "detect"})
    reid_w = numpy_helper.from_array(rng.uniform(0, 1, (8, 3, 1, 1)).astype(np.float32), "w")
    reid = save("tiny_reid", [helper.make_node("Conv", ["images", "w"], ["c"]),
                              helper.make_node("GlobalAveragePool", ["c"], ["p"]),
                              helper.make_node("Flatten", ["p"], ["out"], axis=1)],
                ["batch", 8], [reid_w],
                {"input_height": "64", "input_width": "32", "color_order": "RGB",
                 "mean": "[0.485, 0.456, 0.406]", "std": "[0.229, 0.224, 0.225]", "embedding_dim": "8"})
    return [detector, reid]


def make_seeds(folder: Path, targets: tuple[str, ...]) -> dict[str, list[Path]]:
    """The seed files of each target, written into ``folder``."""
    import cv2

    seeds: dict[str, list[Path]] = {}
    if "video" in targets:
        head = folder / "vtest_head.avi"
        with open(SHARED / "video" / "vtest.avi", "rb") as fh:
            head.write_bytes(fh.read(256 << 10))
        seeds["video"] = [head, write_h264(folder / "vtest_h264.mp4", _vtest_frames(24, (384, 288)))]
    if "photo" in targets:
        jpg = folder / "sample_query.jpg"
        shutil.copyfile(ROOT / "assets" / "sample_query.jpg", jpg)
        png = folder / "sample_query.png"
        cv2.imwrite(str(png), cv2.imread(str(jpg)))
        seeds["photo"] = [jpg, png]
    if "model" in targets:
        seeds["model"] = [*write_tiny_models(folder), SHARED / "models" / "osnet_x0_25_msmt17.onnx"]
    return seeds


# --------------------------------------------------------------------------- mutations


def _position(rng: random.Random, size: int) -> int:
    """A byte position, favouring the first and last 4 KiB (container headers and indexes)."""
    edge = min(4096, size)
    roll = rng.random()
    if roll < 0.35:
        return rng.randrange(edge)
    if roll < 0.55:
        return size - 1 - rng.randrange(edge)
    return rng.randrange(size)


def mutate_bytes(data: bytes, rng: random.Random, other: bytes) -> tuple[bytes, str]:
    """Apply 1-3 byte-level mutations; returns the new bytes and their names."""
    buf = bytearray(data)
    names = []
    for _ in range(rng.randint(1, 3)):
        if len(buf) < 2:
            break
        kind = rng.choice(("flip", "flip", "run", "truncate", "splice", "insert", "delete", "repeat"))
        at = _position(rng, len(buf))
        n = rng.choice((1, 2, 4, 16, 64, 512))
        if kind == "flip":
            for _ in range(rng.randint(1, 16)):
                i = _position(rng, len(buf))
                buf[i] ^= 1 << rng.randrange(8)
        elif kind == "run":
            fill = rng.choice((None, 0, 255))
            chunk = bytes(rng.getrandbits(8) for _ in range(n)) if fill is None else bytes([fill]) * n
            buf[at:at + n] = chunk[:len(buf) - at]
        elif kind == "truncate":
            del buf[max(1, at):]
        elif kind == "splice":
            src = other if other and rng.random() < 0.5 else bytes(buf)
            start = rng.randrange(max(1, len(src) - n))
            buf[at:at + n] = src[start:start + n]
        elif kind == "insert":
            buf[at:at] = bytes(rng.getrandbits(8) for _ in range(n))
        elif kind == "delete":
            del buf[at:at + n]
        else:
            buf[at:at] = buf[at:at + n]
        names.append(kind)
    return bytes(buf), "+".join(names)


def mutate_metadata(path: Path, rng: random.Random, out: Path) -> str:
    """Rewrite an ONNX model with 1-2 of its metadata values replaced by odd ones."""
    import onnx

    model = onnx.load(str(path))
    props = list(model.metadata_props)
    if not props:
        entry = model.metadata_props.add()
        entry.key, entry.value = rng.choice(("names", "imgsz", "input_height", "mean")), ""
        props = [entry]
    changed = []
    for entry in rng.sample(props, min(len(props), rng.randint(1, 2))):
        entry.value = rng.choice(ODD_VALUES)
        changed.append(entry.key)
    onnx.save(model, str(out))
    return "metadata:" + ",".join(changed)


# --------------------------------------------------------------------------- the worker


class _Worker:
    """What a worker process does with one input of its target."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.detector = self.embedder = None
        if target == "photo":
            from core.detection import YoloOnnxDetector
            from core.models import entry_for_file
            from core.reid import OnnxEmbedder

            det = entry_for_file("yolov8s_people_normal_fall.onnx")
            reid = entry_for_file("osnet_x0_25_msmt17.onnx")
            models = SHARED / "models"
            self.detector = YoloOnnxDetector(models / "yolov8s_people_normal_fall.onnx",
                                             person_classes=det.person_classes, device="cpu", threads=1)
            self.embedder = OnnxEmbedder(models / "osnet_x0_25_msmt17.onnx", preprocess=reid.preprocess,
                                         device="cpu", threads=1)

    def run(self, path: Path) -> str:
        return getattr(self, self.target)(path)

    @staticmethod
    def video(path: Path) -> str:
        import numpy as np

        from core.errors import VideoError
        from core.video import fingerprint, open_source

        fingerprint(path)
        with open_source(path) as src:
            n, last = 0, -1
            for frame in src.iter_frames():
                image = frame.image
                if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                        and image.shape[2] == 3 and frame.index > last):
                    raise AssertionError(f"bad frame {frame.index}: {getattr(image, 'shape', None)}")
                last, n = frame.index, n + 1
                if n >= 40:
                    break
            if n:
                src.read(n // 2)
                src.read(0)
            try:
                total = f"{src.verify()} decode"
            except VideoError:  # a cut file (the AVI seed is one): the frames that decode were read
                total = f"truncated at {src.frames_decoded}"
        return f"{n} frames read, {total}"

    def photo(self, path: Path) -> str:
        from core.search import embed_photo, load_photo

        image = load_photo(path, str(path))
        found = embed_photo(path, 0, self.detector, self.embedder)
        return f"{image.shape[1]}x{image.shape[0]}, {found.people} people"

    @staticmethod
    def model(path: Path) -> str:
        import numpy as np

        from core.detection import YoloOnnxDetector
        from core.errors import ModelError
        from core.models import entry_for_file
        from core.onnx_model import load_session
        from core.reid import OnnxEmbedder

        kind = load_session(path, device="cpu", threads=1).kind
        image = np.full((96, 64, 3), 127, np.uint8)
        preprocess = entry_for_file("osnet_x0_25_msmt17.onnx").preprocess  # for models without metadata
        done = [kind]
        for build, use in ((lambda: YoloOnnxDetector(path, device="cpu", threads=1),
                            lambda m: m.detect([image])),
                           (lambda: OnnxEmbedder(path, preprocess=preprocess, device="cpu", threads=1),
                            lambda m: m.embed_crops([image]))):
            try:
                model = build()
            except ModelError:
                continue
            use(model)
            done.append(type(model).__name__)
        return " ".join(done)


def worker_main(target: str) -> int:
    """Serve inputs of one target: a path per line on stdin, one JSON answer per line."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # C libraries that print to stdout cannot garble the answers
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    from core.errors import ReidSearchError

    worker = _Worker(target)
    proto.write(json.dumps({"ready": True}) + "\n")
    proto.flush()
    for line in sys.stdin:
        path = Path(line.strip())
        try:
            answer = {"outcome": "ok", "detail": worker.run(path)}
        except ReidSearchError as err:
            text = str(err)
            named = str(path) in text or path.name in text
            answer = {"outcome": "error" if named else "unnamed", "detail": f"{type(err).__name__}: {text}"}
        except BaseException as err:  # noqa: BLE001 - any other exception is what the fuzzer looks for
            where = [f for f in traceback.extract_tb(err.__traceback__) if "/core/" in f.filename]
            at = f" at {Path(where[-1].filename).name}:{where[-1].lineno}" if where else ""
            answer = {"outcome": "unrelated", "detail": f"{type(err).__name__}: {str(err)[:300]}{at}"}
        proto.write(json.dumps(answer) + "\n")
        proto.flush()
    return 0


# --------------------------------------------------------------------------- the driver


class WorkerProcess:
    """One worker process for a target, restarted after a crash or a hang."""

    def __init__(self, target: str, timeout_s: float) -> None:
        self.target, self.timeout_s = target, timeout_s
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", self.target], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        ready = self._answer(max(self.timeout_s, 120.0))
        if not ready or not ready.get("ready"):
            raise RuntimeError(f"the {self.target} worker did not start")

    def _answer(self, timeout_s: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not readable:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def feed(self, path: Path) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        answer = self._answer(self.timeout_s)
        if answer is not None:
            return answer
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return {"outcome": "hang", "detail": f"no answer in {self.timeout_s:g} s"}
        code = self.proc.returncode
        self.proc = None
        return {"outcome": "crash", "detail": f"worker exited with {code}"}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fuzz(targets: tuple[str, ...], *, inputs: int | None, seconds: float | None, seed: int, timeout_s: float,
         work: Path, keep: Path) -> dict[str, Counter]:
    """Run the mutation loop; returns ``{target: Counter(outcome -> inputs)}``."""
    seeds = make_seeds(work, targets)
    counts: dict[str, Counter] = {t: Counter() for t in targets}
    deadline = time.monotonic() + seconds if seconds else None
    for target in targets:
        rng = random.Random(f"{seed}-{target}")
        worker = WorkerProcess(target, timeout_s)
        blobs = [p.read_bytes() for p in seeds[target]]
        left = len(targets) - targets.index(target)  # targets still to run share the time left
        stop = None if deadline is None else time.monotonic() + (deadline - time.monotonic()) / left
        i = 0
        try:
            while (inputs is None or i < inputs) and (stop is None or time.monotonic() < stop):
                k = rng.randrange(len(seeds[target]))
                path = work / f"input-{target}{seeds[target][k].suffix}"
                if target == "model" and rng.random() < 0.3:
                    how = mutate_metadata(seeds[target][k], rng, path)
                else:
                    data, how = mutate_bytes(blobs[k], rng, blobs[rng.randrange(len(blobs))])
                    path.write_bytes(data)
                answer = worker.feed(path)
                counts[target][answer["outcome"]] += 1
                counts[target]["inputs"] += 1
                if answer["outcome"] in (*BAD, "unnamed"):
                    keep.mkdir(parents=True, exist_ok=True)
                    saved = keep / f"{target}-{i:05d}-{answer['outcome']}{path.suffix}"
                    shutil.copyfile(path, saved)
                    print(f"{answer['outcome']}: {seeds[target][k].name} {how}: {answer['detail']} "
                          f"(input kept as {saved})", flush=True)
                i += 1
        finally:
            worker.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, help="inputs per target")
    parser.add_argument("--seconds", type=float, help="total time budget (split over the targets)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one input may take")
    parser.add_argument("--json", type=Path, help="write the counts as JSON here")
    parser.add_argument("--keep", type=Path, help="where inputs that crashed, hung or raised are kept")
    parser.add_argument("--worker", choices=TARGETS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker)
    targets = tuple(t for t in args.targets.split(",") if t)
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets {sorted(unknown)}; valid: {', '.join(TARGETS)}")
    if args.inputs is None and args.seconds is None:
        args.inputs = 200
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reid-fuzz-") as tmp:
        work = Path(tmp)
        counts = fuzz(targets, inputs=args.inputs, seconds=args.seconds, seed=args.seed,
                      timeout_s=args.timeout, work=work, keep=args.keep or Path("fuzz-findings"))
    wall = time.perf_counter() - t0
    kinds = ("inputs", "ok", "error", "unnamed", *BAD)
    print(f"{'target':8s}" + "".join(f"{k:>11s}" for k in kinds))
    for target, c in counts.items():
        print(f"{target:8s}" + "".join(f"{c[k]:>11d}" for k in kinds))
    total = sum((counts[t] for t in counts), Counter())
    print(f"{'all':8s}" + "".join(f"{total[k]:>11d}" for k in kinds) + f"   ({wall:.0f} s, seed {args.seed})")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "seconds": round(wall, 1),
                                         "counts": {t: dict(c) for t, c in counts.items()}}, indent=1))
    return 1 if any(total[k] for k in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
