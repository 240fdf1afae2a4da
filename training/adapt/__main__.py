r"""Adapt the ReID model to your own footage: ``python -m training.adapt --db LIBRARY --out MODEL.onnx``.

Mines the tracks of every video the app indexed into LIBRARY, holds out the tracks that
start in the last quarter of each video, clusters the other tracks into pseudo-identities
(tracks seen in one frame are never merged) and trains OSNet against a cluster memory,
re-clustering as it goes. Then it checks base and adapted model on the held-out tracks
(true match rate at 1 % false match rate; same track >= 3 s apart vs boxes of one frame)
and exports MODEL.onnx only when the adapted model is not worse (``--force``: anyway).
Interrupted runs resume when the same command is run again.

Exit status: 0 exported, 3 not exported (worse, or too few held-out pairs to tell),
1 an error (one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.cli import run_main


def _default_base() -> Path:
    from core.paths import models_dir

    return models_dir() / "osnet_x0_25_msmt17.pth"


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of ``python -m training.adapt``."""
    from training.adapt.trainer import LABEL_MODES, AdaptSettings

    d = AdaptSettings()
    p = argparse.ArgumentParser(prog="python -m training.adapt", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, help="the app's library database (.sqlite)")
    p.add_argument("--out", required=True, help="the adapted ONNX model to write")
    p.add_argument("--base", default=None,
                   help="weights to start from (default: models/osnet_x0_25_msmt17.pth, the torchreid "
                        "OSNet x0.25 MSMT17 checkpoint the installer fetches)")
    p.add_argument("--work", help="work folder: crops, checkpoint, log, plots "
                                  "(default runs/adapt/<out stem>)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    p.add_argument("--cluster-every", type=int, default=d.cluster_every,
                   help=f"re-cluster every N epochs (default {d.cluster_every})")
    p.add_argument("--iters", type=int, default=d.iters_per_epoch,
                   help=f"at most this many batches per epoch (default {d.iters_per_epoch})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr:g})")
    p.add_argument("--eps", type=float, default=d.eps,
                   help=f"DBSCAN radius on the Jaccard distance (default {d.eps})")
    p.add_argument("--cam-weight", type=float, default=d.cam_weight,
                   help="weight of the camera-aware term (several videos; default 0: off)")
    p.add_argument("--labels", choices=LABEL_MODES, default=d.labels,
                   help="clusters (default) or tracks: the old one-track-one-identity labels, kept to "
                        "compare against (on vtest.avi they push a person's tracks apart: README)")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=(d.height, d.width))
    p.add_argument("--holdout", type=float, default=0.25,
                   help="share of each video, at its end, held out for the check (default 0.25)")
    p.add_argument("--max-crops", type=int, default=8, help="crops per training track (default 8)")
    p.add_argument("--heldout-step", type=float, default=0.5,
                   help="seconds between the frames cut from held-out tracks (default 0.5)")
    p.add_argument("--video", dest="videos", type=int, action="append",
                   help="only this video id (repeatable)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda (default auto)")
    p.add_argument("--workers", type=int, default=d.workers,
                   help=f"data loader workers (default {d.workers})")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="torch CPU threads (default 0: torch's choice; 1 is fastest on a busy machine)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--force", action="store_true", help="export even when the adapted model is worse")
    p.add_argument("--restart", action="store_true", help="forget an earlier run in the work folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars or echoed log lines")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the adaptation; returns the exit status."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        from training.adapt.run import MiningSettings, adapt
        from training.adapt.trainer import AdaptSettings
        from training.errors import CheckpointError

        base = Path(args.base) if args.base else _default_base()
        if not base.is_file():
            raise CheckpointError(f"{base}: base weights not found (install the models, or pass --base FILE)")
        s = AdaptSettings(base=str(base.resolve()), height=args.input_size[0], width=args.input_size[1],
                          epochs=args.epochs, cluster_every=args.cluster_every, iters_per_epoch=args.iters,
                          batch_size=args.batch_size, lr=args.lr, eps=args.eps, cam_weight=args.cam_weight,
                          labels=args.labels, workers=args.workers, threads=args.threads, seed=args.seed,
                          device=args.device, progress=not args.quiet)
        mining = MiningSettings(holdout=args.holdout, max_crops=args.max_crops,
                                heldout_step_s=args.heldout_step, video_ids=args.videos)
        result = adapt(args.db, args.out, work=args.work, settings=s, mining=mining, force=args.force,
                       restart=args.restart, progress=not args.quiet)
        print(result.message)
        return 0 if result.exported else 3

    return run_main(body, "adapting")


if __name__ == "__main__":
    sys.exit(main())
