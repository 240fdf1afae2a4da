r"""Train a ReID model: ``python -m training.train --config FILE [section.key=value ...]``.

Examples::

    python -m training.train --config training/configs/bot_r50_market.yaml \
        data.root=/data/market1501 model.pretrained=/weights/resnet50-imagenet.pth
    python -m training.train --config training/configs/osnet_x0_25_market.yaml train.epochs=2 train.device=cpu
    python -m training.train --config training/configs/bot_r50_market.yaml \
        --resume runs/bot_r50_market/last.pth

Writes logs, ``history.json``, ``curves.png``, checkpoints and ``rank_list.png`` to
``train.output_dir``; ``--export OUT.onnx`` also exports the final model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.cli import run_main


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of ``python -m training.train``."""
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML configuration (see training/configs/)")
    p.add_argument("--resume", help="checkpoint to resume from (same as train.resume=PATH)")
    p.add_argument("--export", help="export the final model to this .onnx path")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.epochs=2 data.root=/data")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run training; returns the exit status."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        from training import config as C
        from training.engine import train
        from training.export import export_onnx

        overrides = list(args.overrides) + ([f"train.resume={args.resume}"] if args.resume else [])
        cfg = C.load_config(args.config, overrides)
        trainer = train(cfg, progress=not args.quiet)
        print(f"done: {trainer.epoch} epochs, output in {Path(cfg['train']['output_dir'])}")
        if args.export:
            meta = trainer.meta()
            report = export_onnx(trainer.model.eval(), args.export,
                                 model_name=cfg["export"]["model_name"] or Path(args.export).stem,
                                 train_dataset=meta["dataset"], input_size=tuple(meta["input_size"]),
                                 mean=meta["mean"], std=meta["std"], eval_figures=meta["eval"],
                                 opset=int(cfg["export"]["opset"]))
            print(f"exported {report.path} (max abs diff {report.max_abs_diff:.2e})")
        return 0

    return run_main(body, "training")


if __name__ == "__main__":
    sys.exit(main())
