"""``python -m core.models list | fetch | verify``: see, obtain and check the models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import ReidSearchError
from core.models.fetch import fetch, verify
from core.models.manifest import TASKS, default_model, load_manifest


def main(argv: list[str] | None = None) -> int:
    """Run the models command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m core.models", description=__doc__)
    parser.add_argument("command", choices=("list", "fetch", "verify"))
    parser.add_argument("--offline", type=Path, metavar="DIR",
                        help="take model files (and checkpoints) from DIR instead of downloading")
    parser.add_argument("--models-dir", type=Path, metavar="DIR",
                        help="models folder (default: the project's models/ or $REID_MODELS_DIR)")
    parser.add_argument("--manifest", type=Path, help="manifest file (default: models/manifest.json)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these manifest entries")
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
    except ReidSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    if args.command == "list":
        for e in entries:
            mark = "present" if e.present else "missing"
            print(f"{e.name:32s} {e.task:6s} {mark:8s} {e.file}  [{e.licence}]")
            print(f"    {e.description}")
        return 0

    failed = False
    for e in entries:
        outcome = fetch(e, offline_dir=args.offline) if args.command == "fetch" else verify(e)
        print(f"{e.name:32s} {outcome.status:8s} {outcome.message}")
        failed |= outcome.status == "failed"
    if args.command == "fetch":
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
