"""``python -m core.models list | fetch | verify | quantize``: see, obtain, check and derive the models.

``fetch`` also makes the int8 version of each present detector that has none yet (and the
float16 version on a machine whose ONNX Runtime has CUDA); ``quantize NAME|FILE [--to
int8|fp16]`` makes one on demand (again, when the float model changed). Derived models
are recorded in ``models/local.json`` (``core.models.derived``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import ReidSearchError
from core.models.derived import DERIVED_PRECISIONS, derived_file_name, find_derived, load_derived
from core.models.fetch import fetch, verify, verify_derived
from core.models.manifest import TASKS, ModelEntry, default_model, load_manifest

COMMANDS = ("list", "fetch", "verify", "quantize")


def _describe(made) -> str:
    agreement = made.about.get("agreement") or {}
    share = agreement.get("share")
    if share is None:
        return f"{made.path} (sha256 {made.sha256[:16]})"
    return (f"{made.path}: {share:.1%} of the float model's confident boxes kept at IoU > {agreement['iou']} "
            f"({agreement['kept']}/{agreement['confident_boxes']} on {agreement['frames']} frames), "
            f"{made.about.get('speedup_cpu', '?')}x faster here")


def _derive(source: Path, precision: str, args: argparse.Namespace) -> str:
    from core.models.quantize import convert_float16, quantize_int8

    out = args.models_dir / derived_file_name(source, precision) if args.models_dir else None
    if precision == "int8":
        extra = {"frames": args.frames} if args.frames else {}
        made = quantize_int8(source, out, calibration=args.calibration, **extra)
    else:
        made = convert_float16(source, out)
    return _describe(made)


def _derive_missing(entries: list[ModelEntry], args: argparse.Namespace) -> bool:
    """``fetch``'s last step: the int8 (and on CUDA the float16) detector of each present detector."""
    from core.onnx_model import cuda_available

    wanted = ("int8", "fp16") if cuda_available() else ("int8",)
    failed = False
    for entry in entries:
        if entry.task != "detect" or not entry.present:
            continue
        for precision in wanted:
            name = f"{entry.name}.{precision}"
            if find_derived(entry.path, precision, entry.folder) is not None:
                print(f"{name:32s} present")
                continue
            try:
                print(f"{name:32s} made     {_derive(entry.path, precision, args)}", flush=True)
            except ReidSearchError as exc:
                print(f"{name:32s} failed   {exc}")
                failed = True
    return failed


def _source_for(name: str, entries: list[ModelEntry]) -> Path:
    for entry in entries:
        if entry.name == name and entry.task == "detect":
            if not entry.present:
                raise ReidSearchError(f"{entry.name}: {entry.path} is not there; fetch it first "
                                      "(python -m core.models fetch)")
            return entry.path
    path = Path(name)
    if path.is_file():
        return path
    known = ", ".join(e.name for e in entries if e.task == "detect")
    raise ReidSearchError(f"{name}: neither a detector of the manifest ({known}) nor a model file")


def main(argv: list[str] | None = None) -> int:
    """Run the models command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m core.models", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="quantize: manifest detector names or detector files")
    parser.add_argument("--offline", type=Path, metavar="DIR",
                        help="take model files (and checkpoints) from DIR instead of downloading")
    parser.add_argument("--models-dir", type=Path, metavar="DIR",
                        help="models folder (default: the project's models/ or $REID_MODELS_DIR)")
    parser.add_argument("--manifest", type=Path, help="manifest file (default: models/manifest.json)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these manifest entries")
    parser.add_argument("--to", choices=DERIVED_PRECISIONS, default="int8",
                        help="quantize: the precision to make (default: int8)")
    parser.add_argument("--calibration", type=Path, metavar="VIDEO",
                        help="quantize: video to calibrate on (default: assets/sample_clip.mp4)")
    parser.add_argument("--frames", type=int, metavar="N", help="quantize: calibration frames (default: 24)")
    args = parser.parse_args(argv)
    try:
        entries = load_manifest(args.manifest, args.models_dir)
        if args.only:
            known = {e.name for e in entries}
            unknown = sorted(set(args.only) - known)
            if unknown:
                raise ReidSearchError(f"unknown model(s) {', '.join(unknown)}; valid names: "
                                      f"{', '.join(sorted(known))}")
            entries = [e for e in entries if e.name in args.only]
        if args.offline is not None and not args.offline.is_dir():
            raise ReidSearchError(f"{args.offline}: offline model folder not found")
        if args.command == "quantize":
            if not args.names:
                raise ReidSearchError("quantize needs a detector: a manifest name or a model file")
            for name in args.names:
                print(f"{name}: {args.to} {_derive(_source_for(name, entries), args.to, args)}")
            return 0
    except ReidSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    if args.command == "list":
        for e in entries:
            mark = "present" if e.present else "missing"
            print(f"{e.name:32s} {e.task:6s} {mark:8s} {e.file}  [{e.licence}]")
            print(f"    {e.description}")
        for d in load_derived(args.models_dir):
            mark = "present" if d.usable() else "changed" if d.path.is_file() else "missing"
            print(f"{Path(d.file).stem:32s} detect {mark:8s} {d.file}  [{d.precision} of {d.source_file}]")
        return 0

    failed = False
    for e in entries:
        outcome = fetch(e, offline_dir=args.offline) if args.command == "fetch" else verify(e)
        print(f"{e.name:32s} {outcome.status:8s} {outcome.message}")
        failed |= outcome.status == "failed"
    if args.command == "verify":
        for made, status, message in verify_derived(args.models_dir):
            print(f"{Path(made.file).stem:32s} {status:8s} {message}")
            failed |= status == "failed"
    if args.command == "fetch":
        failed |= _derive_missing(entries, args)
        for task in TASKS:
            try:
                chosen = default_model(task, entries)
                print(f"default {task} model: {chosen.name} ({chosen.path})")
            except ReidSearchError as exc:
                if not args.only:
                    print(f"error: {exc}", file=sys.stderr)
                    failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
