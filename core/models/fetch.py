"""Obtain and check model files: download, convert, export, or copy from a local folder.

Each manifest entry's ``source.kind`` says how its file comes to be:

- ``download``: ``url`` is fetched with a progress bar and checked against ``sha256``.
- ``convert``: a checkpoint (``weights``, from ``url``, checked against
  ``weights_sha256``) is turned into ONNX by ``command`` run with this Python
  (``{weights}`` and ``{out}`` are filled in), e.g. torchreid OSNet -> ONNX by
  ``training.export``.
- ``ultralytics-export``: Ultralytics weights (``weights``; Ultralytics downloads
  them by name when they are not in the local folder) are exported to ONNX.
- ``local``: the file can only be supplied from a local folder (``--offline DIR``).

With ``offline_dir`` every kind first looks for its file (or checkpoint) there and
never touches the network; URLs may also be ``file://`` addresses, which is how the
download path is tested here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from core import paths
from core.errors import ModelError
from core.fileio import sha256_file
from core.models.derived import DerivedModel, load_derived
from core.models.manifest import ModelEntry

EXPORT_SCRIPT = (
    "import sys\n"
    "from ultralytics import YOLO\n"
    "out = YOLO(sys.argv[1]).export(format='onnx', dynamic=True, imgsz=int(sys.argv[2]))\n"
    "print(out)\n"
)


@dataclass(frozen=True)
class Outcome:
    """What happened to one entry: ``status`` is present, fetched, skipped or failed."""

    entry: ModelEntry
    status: str
    message: str


def download(url: str, dest: Path, sha256: str | None = None, *, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` with a progress bar, checking its sha256.

    The data goes to ``dest.part`` first and is renamed only once complete and
    verified, so an interrupted download never leaves a broken model behind.

    Raises:
        ModelError: On a network error or a digest mismatch.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=not progress, leave=False) as bar:
                while block := resp.read(1 << 16):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise ModelError(f"{dest.name}: download from {url} failed ({exc})") from None
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink(missing_ok=True)
            raise ModelError(f"{dest.name}: downloaded file has sha256 {got}, expected {sha256}")
    part.replace(dest)
    return dest


def _copy_checked(src: Path, dest: Path, sha256: str | None) -> None:
    if sha256 is not None and sha256_file(src) != sha256:
        raise ModelError(f"{src}: sha256 differs from the manifest's {sha256}; not using it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)


def _run(cmd: list[str], what: str, cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"{what} failed: {tail[0]}")
    return proc.stdout


def _obtain_weights(entry: ModelEntry, offline_dir: Path | None, progress: bool) -> Path:
    src = entry.source
    weights = entry.folder / src["weights"]
    if offline_dir is not None:
        _copy_checked(offline_dir / src["weights"], weights, src.get("weights_sha256"))
    elif not weights.is_file():
        download(src["url"], weights, src.get("weights_sha256"), progress=progress)
    return weights


def _convert(entry: ModelEntry, offline_dir: Path | None, progress: bool) -> None:
    weights = _obtain_weights(entry, offline_dir, progress)
    args = [a.format(weights=weights, out=entry.path) for a in entry.source["command"]]
    _run([sys.executable, *args], f"converting {weights.name} to {entry.file}", paths.REPO_ROOT)


def _ultralytics_export(entry: ModelEntry, offline_dir: Path | None) -> None:
    weights = entry.source["weights"]
    if offline_dir is not None:
        weights = str((offline_dir / weights).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        if not Path(weights).is_absolute() and (entry.folder / weights).is_file():
            weights = str((entry.folder / weights).resolve())
        out = _run([sys.executable, "-c", EXPORT_SCRIPT, weights, str(entry.source.get("imgsz", 640))],
                   f"exporting {Path(weights).name} to ONNX with Ultralytics", Path(tmp))
        produced = Path(out.strip().splitlines()[-1])
        if not produced.is_absolute():
            produced = Path(tmp) / produced
        entry.folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(produced), entry.path)


def fetch(entry: ModelEntry, *, offline_dir: Path | None = None, progress: bool = True) -> Outcome:
    """Make ``entry``'s file present in its folder.

    Args:
        entry: The manifest entry.
        offline_dir: A local folder to take files (or checkpoints) from instead of
            the network.
        progress: Show a progress bar while downloading.

    Returns:
        The outcome; errors are reported in it (status ``failed``), not raised.
    """
    if entry.present and (entry.sha256 is None or sha256_file(entry.path) == entry.sha256):
        return Outcome(entry, "present", str(entry.path))
    kind = entry.source.get("kind", "local")
    if offline_dir is not None and not (offline_dir / entry.file).is_file():
        needed = entry.source.get("weights") if kind in ("convert", "ultralytics-export") else None
        if needed is None or not (offline_dir / needed).is_file():
            return Outcome(entry, "skipped", f"neither {entry.file} nor its source is in {offline_dir}")
    try:
        if offline_dir is not None and (offline_dir / entry.file).is_file():
            _copy_checked(offline_dir / entry.file, entry.path, entry.sha256)
        elif kind == "download":
            download(entry.source["url"], entry.path, entry.sha256, progress=progress)
        elif kind == "convert":
            _convert(entry, offline_dir, progress)
        elif kind == "ultralytics-export":
            _ultralytics_export(entry, offline_dir)
        elif kind == "local":
            return Outcome(entry, "skipped", "supplied from a local folder only (use --offline DIR)")
        else:
            raise ModelError(f"{entry.name}: unknown source kind {kind!r}; valid kinds: "
                             "download, convert, ultralytics-export, local")
    except ModelError as exc:
        return Outcome(entry, "failed", str(exc))
    except KeyError as exc:
        return Outcome(entry, "failed", f"{entry.name}: manifest source lacks {exc}")
    return Outcome(entry, "fetched", str(entry.path))


def verify(entry: ModelEntry) -> Outcome:
    """Check a present model file: sha256 (when known) and that it loads as its task says.

    ONNX Runtime must load the file as the kind of model the entry names (a
    detector for ``detect``, a ReID model for ``reid``).

    Returns:
        Outcome with status ``ok``, ``missing`` or ``failed``.
    """
    if not entry.present:
        return Outcome(entry, "missing", f"{entry.path} is not there")
    if entry.sha256 is not None:
        got = sha256_file(entry.path)
        if got != entry.sha256:
            return Outcome(entry, "failed", f"{entry.path}: sha256 {got} differs from {entry.sha256}")
    from core.onnx_model import load_session  # onnxruntime is heavy: only when verifying

    try:
        model = load_session(entry.path, device="cpu", expect=entry.task)
    except ModelError as exc:
        return Outcome(entry, "failed", str(exc))
    return Outcome(entry, "ok", f"{entry.path} loads as a {entry.task} model ({model.provider})")


def verify_derived(folder: Path | None = None) -> list[tuple[DerivedModel, str, str]]:
    """Check every recorded derived model: its file has the recorded sha256 and loads as a detector.

    Returns:
        ``(model, status, message)`` per record; status ``ok``, ``missing`` or ``failed``.
    """
    from core.onnx_model import load_session

    out = []
    for made in load_derived(folder):
        if not made.path.is_file():
            out.append((made, "missing", f"{made.path} is not there (python -m core.models fetch makes it)"))
        elif sha256_file(made.path) != made.sha256:
            out.append((made, "failed", f"{made.path}: sha256 differs from the {made.sha256} recorded when it "
                                        "was made"))
        else:
            try:
                model = load_session(made.path, device="cpu", expect="detect")
                out.append((made, "ok", f"{made.path} loads as a {made.precision} detector ({model.provider})"))
            except ModelError as exc:
                out.append((made, "failed", str(exc)))
    return out
