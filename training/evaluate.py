r"""Evaluate a ReID model on a dataset's query/gallery split (Market-1501 protocol).

Examples::

    python -m training.evaluate --checkpoint runs/bot_r50_market/last.pth --dataset market1501 --root /data
    python -m training.evaluate --arch osnet_x0_25 --weights osnet_x0_25_msmt17.pth --dataset market1501 \
        --root /data --rerank --rank-list ranks.png
    python -m training.evaluate --onnx models/osnet_x0_25_msmt17.onnx --dataset market1501 --root /data

Prints Rank-1/5/10, mAP and mINP (in %); ``--json`` writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.cli import run_main


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of ``python -m training.evaluate``."""
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint written by python -m training.train")
    src.add_argument("--weights", help="state dict / torchreid checkpoint (needs --arch)")
    src.add_argument("--onnx", help="an exported ONNX ReID model (metadata or --input-size/--mean/--std)")
    p.add_argument("--arch", help="architecture of --weights")
    p.add_argument("--dataset", required=True, help="dataset name, e.g. market1501")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--input-size", dest="input_size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--mean", type=float, nargs=3)
    p.add_argument("--std", type=float, nargs=3)
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)")
    p.add_argument("--qe", type=int, default=0, metavar="K", help="average query expansion with K neighbours")
    p.add_argument("--rank-list", dest="rank_list", help="write a rank-list PNG of the first queries")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    return p


def _onnx_features(path: str, items, size, mean, std, batch_size: int) -> np.ndarray:
    import onnxruntime as ort
    from tqdm import tqdm

    from training.data.transforms import read_rgb
    from training.export import preprocess

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = []
    for i in tqdm(range(0, len(items), batch_size), desc="features", leave=False):
        crops = [read_rgb(p)[:, :, ::-1] for p, _, _ in items[i:i + batch_size]]
        out.append(sess.run(None, {name: preprocess(crops, size, mean, std)})[0])
    return np.concatenate(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; returns the exit status."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        from training.data.datasets import build_dataset
        from training.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
        from training.engine import resolve_device
        from training.errors import ConfigError, DataError
        from training.evaluation.features import evaluate_features, extract_features
        from training.evaluation.visualize import save_rank_list

        data = build_dataset(args.dataset, args.root)
        if not data.query or not data.gallery:
            raise DataError(f"{args.root}: dataset {args.dataset} has no query/gallery split to evaluate")
        size, mean, std = (256, 128), list(IMAGENET_MEAN), list(IMAGENET_STD)
        if args.onnx:
            import onnx

            md = {p.key: p.value for p in onnx.load(args.onnx, load_external_data=False).metadata_props}
            if "input_height" in md:
                size = (int(md["input_height"]), int(md["input_width"]))
                mean, std = json.loads(md["mean"]), json.loads(md["std"])
        elif args.checkpoint:
            from training.checkpoint import load_checkpoint
            from training.modeling import build_model, load_weights

            ckpt = load_checkpoint(args.checkpoint)
            meta = ckpt["meta"]
            model = build_model(meta["arch"], num_classes=0, **meta["model_kwargs"])
            load_weights(model, ckpt["model"], source=args.checkpoint)
            size, mean, std = tuple(meta["input_size"]), meta["mean"], meta["std"]
        else:
            if not args.arch:
                raise ConfigError("--weights needs --arch (e.g. --arch osnet_x0_25)")
            from training.modeling import build_model, load_weights

            model = build_model(args.arch, num_classes=0)
            load_weights(model, args.weights)
        size = tuple(args.input_size) if args.input_size else size
        mean, std = args.mean or mean, args.std or std
        if args.onnx:
            qf = _onnx_features(args.onnx, data.query, size, mean, std, args.batch_size)
            gf = _onnx_features(args.onnx, data.gallery, size, mean, std, args.batch_size)
        else:
            device = resolve_device(args.device)
            model.to(device).eval()
            tf = build_transforms(size[0], size[1], train=False, mean=mean, std=std)
            kw = {"device": str(device), "batch_size": args.batch_size, "workers": args.workers}
            qf = extract_features(model, data.query, tf, desc="query", **kw)
            gf = extract_features(model, data.gallery, tf, desc="gallery", **kw)
        metrics, dist = evaluate_features(qf, gf, data.query, data.gallery, rerank=args.rerank, qe_k=args.qe)
        print(f"{args.dataset}: {metrics}")
        if args.rank_list:
            save_rank_list(args.rank_list, dist, data.query, data.gallery)
            print(f"rank list: {args.rank_list}")
        if args.json:
            Path(args.json).write_text(json.dumps(metrics.as_dict(), indent=1))
        return 0

    return run_main(body, "evaluation")


if __name__ == "__main__":
    sys.exit(main())
