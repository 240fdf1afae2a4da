r"""Export a ReID model to ONNX with the metadata the app reads, and check it on real images.

Usage::

    # a published torchreid checkpoint (plain state dict or {'state_dict': ...}, 'module.' prefixes ok)
    python -m training.export --arch osnet_x0_25 --weights osnet_x0_25_msmt17.pth \
        --out osnet_x0_25_msmt17.onnx [--train-dataset msmt17]
    # a checkpoint written by python -m training.train (arch, input size, mean/std from it)
    python -m training.export --checkpoint runs/bot_r50_market/last.pth --out models/bot_r50_market.onnx

The ONNX file has input ``images`` ``(N, 3, H, W)`` float32 (dynamic N), output
``output`` ``(N, D)``, opset 17, and the metadata map of the team brief: ``task=reid``,
``input_height``, ``input_width``, ``color_order``, ``mean``, ``std`` (JSON, 0..1 scale),
``embedding_dim``, ``model_name``, ``train_dataset``, ``eval`` (JSON, when known),
``normalized`` (``"0"``: the output is not L2-normalised).

After writing, ``onnx.checker`` validates the file and ONNX Runtime's output is
compared with torch's on real images (``--check-images DIR``; default: the shared
test crops when present, else the vtest crops in ``training/check_images``); a max
absolute difference above ``--atol`` (1e-4) fails the export and leaves no file.
On any failure the command prints one line to stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from training.cli import run_main
from training.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from training.errors import ExportError

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_CHECK_IMAGES = PACKAGE_DIR / "check_images"
INPUT_NAME, OUTPUT_NAME = "images", "output"


def shared_data_dir() -> Path:
    """The shared real-data folder: ``$REID_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("REID_SHARED_DATA", PACKAGE_DIR.parent.parent / "shared" / "data"))


def default_check_images() -> list[Path]:
    """Real crops for the parity check: the shared Market-1501 query crops when present + the bundled ones."""
    found: list[Path] = []
    shared = shared_data_dir() / "reid_images" / "market1501_songwsx" / "query"
    if shared.is_dir():
        found += sorted(shared.glob("*.jpg"))
    found += sorted(BUNDLED_CHECK_IMAGES.glob("*.jpg"))
    return found


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``.

    Raises:
        ExportError: Not a folder, or no images in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder}: check-images folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
    if not files:
        raise ExportError(f"{folder}: no .jpg/.png images to check the export on")
    return files


def preprocess(images_bgr: Sequence[np.ndarray], input_size: tuple[int, int], mean: Sequence[float],
               std: Sequence[float], color_order: str = "RGB") -> np.ndarray:
    """BGR crops -> ``(N, 3, H, W)`` float32 input: bilinear resize, channel order, ``(x/255 - mean)/std``."""
    h, w = input_size
    m = np.asarray(mean, np.float32).reshape(1, 1, 3)
    s = np.asarray(std, np.float32).reshape(1, 1, 3)
    out = []
    for img in images_bgr:
        x = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        if color_order == "RGB":
            x = cv2.cvtColor(x, cv2.COLOR_BGR2RGB)
        out.append(((x.astype(np.float32) / 255.0 - m) / s).transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


@dataclass(frozen=True)
class ExportReport:
    """Outcome of :func:`export_onnx`.

    Attributes:
        path: The written ONNX file.
        embedding_dim: D of the ``(N, D)`` output.
        max_abs_diff: Largest ``|onnxruntime - torch|`` over the check images' embeddings.
        num_check_images: How many real images were compared.
        metadata: The metadata map written.
    """

    path: Path
    embedding_dim: int
    max_abs_diff: float
    num_check_images: int
    metadata: dict[str, str]


def export_onnx(model: nn.Module, out_path: str | Path, *, model_name: str, train_dataset: str = "unknown",
                input_size: tuple[int, int] = (256, 128), mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD, color_order: str = "RGB",
                eval_figures: dict[str, Any] | None = None, check_images: Sequence[str | Path] | None = None,
                opset: int = 17, atol: float = 1e-4) -> ExportReport:
    """Export ``model`` (in eval mode) to ONNX with metadata, validate it and check parity on real images.

    Args:
        model: A ReID network in eval mode whose forward maps ``(N, 3, H, W)`` to ``(N, D)``.
        out_path: Where to write the ``.onnx`` file (written only when every check passes).
        model_name: Metadata ``model_name``.
        train_dataset: Metadata ``train_dataset``.
        input_size: ``(H, W)`` of the input.
        mean: RGB mean on the 0..1 scale.
        std: RGB std on the 0..1 scale.
        color_order: ``"RGB"`` or ``"BGR"``, the channel order the model expects.
        eval_figures: Optional figures for the ``eval`` metadata (e.g. ``{"rank1": 94.1, "mAP": 85.7}``).
        check_images: Real image files for the parity check (default: :func:`default_check_images`).
        opset: ONNX opset.
        atol: Largest allowed absolute difference between ONNX Runtime and torch outputs.

    Returns:
        The report (path, D, max difference, number of images, metadata).

    Raises:
        ExportError: The model is in training mode, the export or ``onnx.checker`` fails,
            no check image is readable, or the outputs differ by more than ``atol``.
    """
    import onnx
    import onnxruntime as ort

    if model.training:
        raise ExportError(f"{out_path}: the model must be in eval mode for export (call model.eval())")
    if color_order not in ("RGB", "BGR"):
        raise ExportError(f"{out_path}: color_order must be RGB or BGR, not {color_order!r}")
    out_path = Path(out_path)
    files = [Path(p) for p in (check_images if check_images is not None else default_check_images())]
    crops = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]
    unreadable = [str(p) for p, c in zip(files, crops, strict=True) if c is None]
    if unreadable or not files:
        raise ExportError(f"{unreadable[0] if unreadable else out_path}: "
                          f"{'unreadable check image' if unreadable else 'no check images given'}")
    cpu_model = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    cpu_model = cpu_model.float().eval()
    h, w = int(input_size[0]), int(input_size[1])
    dummy = torch.from_numpy(preprocess(crops[:2], (h, w), mean, std, color_order))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(cpu_model, (dummy,), str(tmp), input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                              opset_version=opset, do_constant_folding=True, dynamo=False)
        proto = onnx.load(str(tmp))
        out_shape = proto.graph.output[0].type.tensor_type.shape.dim
        dim = int(out_shape[1].dim_value) if len(out_shape) == 2 else 0
        if dim <= 0:
            raise ExportError(f"{out_path}: the model's output is not (N, D) "
                              f"(got {len(out_shape)} dims)")
        metadata = {
            "task": "reid", "input_height": str(h), "input_width": str(w), "color_order": color_order,
            "mean": json.dumps([float(v) for v in mean]), "std": json.dumps([float(v) for v in std]),
            "embedding_dim": str(dim), "model_name": model_name, "train_dataset": train_dataset,
            "normalized": "0",
        }
        if eval_figures:
            metadata["eval"] = json.dumps(eval_figures)
        del proto.metadata_props[:]
        for k, v in metadata.items():
            proto.metadata_props.add(key=k, value=v)
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(tmp))
        x = preprocess(crops, (h, w), mean, std, color_order)
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        with torch.no_grad():
            ref = cpu_model(torch.from_numpy(x)).numpy()
        diff = float(np.abs(got - ref).max())
        if got.shape != ref.shape or not diff <= atol:
            raise ExportError(f"{out_path}: ONNX Runtime differs from torch by {diff:.3g} (> {atol:g}) "
                              f"on {len(crops)} real images")
        tmp.replace(out_path)
    except ExportError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:  # noqa: BLE001 - exporter/checker errors become one sentence
        tmp.unlink(missing_ok=True)
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ExportError(f"{out_path}: ONNX export failed ({type(exc).__name__}: {msg})") from None
    return ExportReport(out_path, dim, diff, len(crops), metadata)


def model_from_args(args: argparse.Namespace) -> tuple[nn.Module, dict[str, Any]]:
    """Build the eval-mode model and its export settings from parsed CLI arguments."""
    from training.checkpoint import load_checkpoint
    from training.modeling import build_model, load_weights

    settings: dict[str, Any] = {"input_size": (256, 128), "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                                "train_dataset": "unknown", "eval_figures": None}
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint)
        meta = ckpt["meta"]
        model = build_model(meta["arch"], num_classes=0, **meta["model_kwargs"])
        load_weights(model, ckpt["model"], source=str(args.checkpoint))
        settings.update(input_size=tuple(meta["input_size"]), mean=meta["mean"], std=meta["std"],
                        train_dataset=meta["dataset"], eval_figures=meta.get("eval"), arch=meta["arch"])
    else:
        model = build_model(args.arch, num_classes=0)
        load_weights(model, args.weights)
        settings["arch"] = args.arch
    for key in ("input_size", "mean", "std", "train_dataset"):
        if getattr(args, key) is not None:
            settings[key] = tuple(getattr(args, key)) if key == "input_size" else getattr(args, key)
    if args.eval is not None:
        try:
            settings["eval_figures"] = json.loads(args.eval)
        except json.JSONDecodeError:
            raise ExportError(f"--eval {args.eval!r}: not a JSON object") from None
    return model.eval(), settings


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of ``python -m training.export``."""
    p = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="state dict / torchreid checkpoint (needs --arch)")
    src.add_argument("--checkpoint", help="checkpoint written by python -m training.train")
    p.add_argument("--arch", help="architecture of --weights, e.g. osnet_x0_25, resnet50")
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--train-dataset", dest="train_dataset", help="metadata train_dataset (e.g. msmt17)")
    p.add_argument("--model-name", dest="model_name", help="metadata model_name (default: output file stem)")
    p.add_argument("--input-size", dest="input_size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--mean", type=float, nargs=3)
    p.add_argument("--std", type=float, nargs=3)
    p.add_argument("--eval", help='JSON figures for the metadata, e.g. \'{"rank1": 94.1, "mAP": 85.7}\'')
    p.add_argument("--check-images", dest="check_images", help="folder of real images for the parity check")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--atol", type=float, default=1e-4, help="largest allowed ONNX-vs-torch difference")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter; returns the process exit status (1 with a one-line message on failure)."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        if args.weights and not args.arch:
            raise ExportError("--weights needs --arch (e.g. --arch osnet_x0_25)")
        model, s = model_from_args(args)
        files = list_images(args.check_images) if args.check_images else None
        report = export_onnx(model, args.out, model_name=args.model_name or Path(args.out).stem,
                             train_dataset=s["train_dataset"], input_size=s["input_size"], mean=s["mean"],
                             std=s["std"], eval_figures=s["eval_figures"], check_images=files,
                             opset=args.opset, atol=args.atol)
        md = report.metadata
        print(f"wrote {report.path}: {s['arch']} -> (N, {report.embedding_dim}) for {md['input_height']}x"
              f"{md['input_width']} {md['color_order']} input; ONNX Runtime vs torch max abs diff "
              f"{report.max_abs_diff:.2e} on {report.num_check_images} real images")
        return 0

    return run_main(body, "export")


if __name__ == "__main__":
    sys.exit(main())
