"""Measure training and inference speed (images/second) of the architectures on this machine.

Usage::

    python -m training.benchmark [--arch osnet_x0_25 resnet50 ...] [--batch 32] [--iters 3]
                                 [--device cpu|cuda] [--threads N] [--amp]

A training step is the real one of ``python -m training.train`` for each model's
recipe head (forward, CE + batch-hard triplet, backward, Adam step) on batches of real
crops (the export check images, resized to 256x128, P x 4 identities); inference is
the eval-mode forward in torch. The first iteration is a warm-up and not counted.
Prints one line per architecture; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import cv2
import torch

from training.cli import run_main


def _batch(n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    from training.data.transforms import build_transforms, read_rgb
    from training.export import default_check_images

    tf = build_transforms(height, width, train=True)
    files = default_check_images()
    imgs = [read_rgb(str(files[i % len(files)])) for i in range(n)]
    x = torch.stack([tf(cv2.flip(im, 1) if i % 2 else im) for i, im in enumerate(imgs)])
    return x, torch.arange(n) // 4


def bench(arch: str, *, batch: int, iters: int, device: str, amp: bool, height: int = 256,
          width: int = 128) -> dict[str, float]:
    """Training and inference images/second of ``arch`` (mean over ``iters`` after one warm-up)."""
    from training.losses import ReidLoss
    from training.modeling import build_model
    from training.solver import build_optimizer

    kw = {} if arch.startswith("resnet") else {"fc_dim": 512, "bnneck": False}
    classes = batch // 4
    model = build_model(arch, num_classes=classes, **kw).to(device).train()
    crit = ReidLoss(classes, model.feature_dim).to(device)
    opt = build_optimizer(model)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    x, y = _batch(batch, height, width)
    x, y = x.to(device), y.to(device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    times = []
    for i in range(iters + 1):
        sync()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            out = model(x)
        loss, _ = crit(out.logits, out.features.float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sync()
        if i:
            times.append(time.perf_counter() - t)
    train_ips = batch * len(times) / sum(times)
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(iters + 1):
            sync()
            t = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                model(x)
            sync()
            if i:
                times.append(time.perf_counter() - t)
    return {"train_img_s": train_ips, "infer_img_s": batch * len(times) / sum(times)}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m training.benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", nargs="+", default=["osnet_x0_25", "osnet_x1_0", "resnet50"])
    p.add_argument("--batch", type=int, default=32, help="images per batch (multiple of 4)")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    args = p.parse_args(argv)

    def body() -> int:
        if args.threads:
            torch.set_num_threads(args.threads)
        where = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                 else f"CPU, {torch.get_num_threads()} torch threads")
        print(f"torch {torch.__version__} on {where}; batch {args.batch} at 256x128, "
              f"{args.iters} timed iterations")
        for arch in args.arch:
            r = bench(arch, batch=args.batch, iters=args.iters, device=args.device, amp=args.amp)
            print(f"{arch:14s} train {r['train_img_s']:8.1f} img/s   inference {r['infer_img_s']:8.1f} img/s",
                  flush=True)
        return 0

    return run_main(body, "benchmark")


if __name__ == "__main__":
    sys.exit(main())
