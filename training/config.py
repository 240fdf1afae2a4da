"""Training configuration: YAML over defaults, ``key=value`` overrides, config -> builder kwargs.

This module is the one place that maps a configuration to the keyword arguments of the builders.

A configuration is a plain nested dict (no global config object) with the sections of
:data:`DEFAULTS`. Files may set any subset; unknown keys are errors that list the valid
ones. Overrides use dotted keys and YAML values: ``train.epochs=2``,
``data.root=/data/market``, ``sched.milestones=[20,40]``, ``model.pretrained=null``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from training.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from training.errors import ConfigError

DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {
        "arch": "resnet50",        # training.modeling.MODELS key
        "pretrained": None,        # local weights file to start from (ImageNet or ReID), None: from scratch
        "last_stride": 1,          # ResNet only
        "pooling": "avg",          # avg | gem
        "bnneck": True,            # BoT BNNeck head
        "fc_dim": None,            # embedding FC (OSNet's torchreid head: 512)
    },
    "data": {
        "dataset": "market1501",   # training.data.datasets.DATASETS key
        "root": "data",
        "height": 256,
        "width": 128,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "batch_size": 64,
        "num_instances": 4,        # K of the PK sampler (P = batch_size / K); 0 or 1: random batches
        "workers": 2,
        "flip_p": 0.5,
        "padding": 10,
        "erasing_p": 0.5,
        "color_jitter": False,
    },
    "loss": {
        "ce_weight": 1.0,
        "label_smooth": 0.1,
        "triplet_weight": 1.0,
        "triplet_margin": 0.3,     # None: soft margin
        "triplet_normalize": False,
        "center_weight": 0.0005,   # 0: off
        "center_lr": 0.5,          # SGD learning rate of the centers
        "circle_weight": 0.0,
        "circle_margin": 0.25,
        "circle_gamma": 64.0,
    },
    "optim": {
        "name": "adam",            # adam | amsgrad | adamw | sgd
        "lr": 3.5e-4,
        "weight_decay": 5e-4,
        "weight_decay_bias": 5e-4,
        "bias_lr_factor": 1.0,
        "momentum": 0.9,
    },
    "sched": {
        "mode": "multistep",       # multistep | cosine | constant
        "milestones": [40, 70],
        "gamma": 0.1,
        "warmup_epochs": 10,
        "warmup_factor": 0.01,
        "min_factor": 0.0,
    },
    "train": {
        "epochs": 120,
        "iters_per_epoch": 0,      # 0: a full pass of the sampler; >0: cut each epoch short (smoke runs)
        "checkpoint_every": 10,
        "eval_every": 40,          # 0: evaluate only after the last epoch (when there is a query split)
        "freeze_epochs": 0,        # train only the head for this many first epochs
        "amp": True,               # mixed precision on CUDA (ignored on CPU)
        "seed": 0,
        "device": "auto",          # auto | cpu | cuda | cuda:N
        "cpu_threads": 0,          # torch threads on CPU (0: torch's default); 1 is fastest on a busy box
        "output_dir": "runs/train",
        "resume": None,            # checkpoint to resume from
    },
    "test": {
        "batch_size": 128,
        "normalize": True,
        "rerank": False,
        "qe_k": 0,
    },
    "export": {
        "model_name": None,        # default: <arch>_<dataset>
        "opset": 17,
    },
}


def _check_keys(cfg: dict[str, Any], where: str) -> None:
    for section, values in cfg.items():
        if section not in DEFAULTS:
            raise ConfigError(f"{where}: unknown section {section!r}; valid sections: {', '.join(DEFAULTS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: section {section!r} must be a mapping of keys to values")
        for key in values:
            if key not in DEFAULTS[section]:
                raise ConfigError(f"{where}: unknown key {section}.{key}; valid keys of {section}: "
                                  f"{', '.join(DEFAULTS[section])}")


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``update``'s sections/keys written over it (a deep copy)."""
    out = copy.deepcopy(base)
    for section, values in update.items():
        out.setdefault(section, {}).update(copy.deepcopy(values or {}))
    return out


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["train.epochs=2", ...]`` -> ``{"train": {"epochs": 2}}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. train.epochs=2")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"override {item!r}: value is not valid YAML") from None
        out.setdefault(parts[0], {})[parts[1]] = parsed
    _check_keys(out, "override")
    return out


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Defaults, then the YAML file (if any), then the overrides.

    Raises:
        ConfigError: Unreadable file, unknown keys, malformed overrides.
    """
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError:
            raise ConfigError(f"{path}: cannot read the configuration file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections (model, data, ...) at the top")
        _check_keys(data, str(path))
        cfg = merge(cfg, data)
    return merge(cfg, parse_overrides(overrides))


# --- the one place that maps a configuration to builder keyword arguments ---------------------------


def model_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``build_model(arch, num_classes, **kw)`` (architecture-dependent)."""
    m = cfg["model"]
    kw: dict[str, Any] = {"pooling": m["pooling"], "bnneck": bool(m["bnneck"]), "fc_dim": m["fc_dim"]}
    if m["arch"].startswith("resnet"):
        kw["last_stride"] = int(m["last_stride"])
    return kw


def transform_kwargs(cfg: dict[str, Any], train: bool) -> dict[str, Any]:
    """Keyword arguments of ``build_transforms``."""
    d = cfg["data"]
    return {"height": int(d["height"]), "width": int(d["width"]), "train": train, "mean": list(d["mean"]),
            "std": list(d["std"]), "flip_p": float(d["flip_p"]), "padding": int(d["padding"]),
            "erasing_p": float(d["erasing_p"]), "color_jitter": bool(d["color_jitter"])}


def train_loader_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``build_train_loader`` (besides items and transform)."""
    d = cfg["data"]
    return {"batch_size": int(d["batch_size"]), "num_instances": int(d["num_instances"]),
            "workers": int(d["workers"]), "seed": int(cfg["train"]["seed"])}


def loss_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``ReidLoss`` (besides num_classes and feat_dim)."""
    lo = cfg["loss"]
    margin = lo["triplet_margin"]
    return {"ce_weight": float(lo["ce_weight"]), "label_smooth": float(lo["label_smooth"]),
            "triplet_weight": float(lo["triplet_weight"]),
            "triplet_margin": None if margin is None else float(margin),
            "triplet_normalize": bool(lo["triplet_normalize"]), "center_weight": float(lo["center_weight"]),
            "circle_weight": float(lo["circle_weight"]), "circle_margin": float(lo["circle_margin"]),
            "circle_gamma": float(lo["circle_gamma"])}


def optimizer_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``build_optimizer`` (besides the model)."""
    o = cfg["optim"]
    return {"name": o["name"], "lr": float(o["lr"]), "weight_decay": float(o["weight_decay"]),
            "weight_decay_bias": None if o["weight_decay_bias"] is None else float(o["weight_decay_bias"]),
            "bias_lr_factor": float(o["bias_lr_factor"]), "momentum": float(o["momentum"])}


def scheduler_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``WarmupLR`` (besides the optimiser)."""
    s = cfg["sched"]
    return {"mode": s["mode"], "max_epochs": int(cfg["train"]["epochs"]),
            "milestones": [int(m) for m in s["milestones"]], "gamma": float(s["gamma"]),
            "warmup_epochs": int(s["warmup_epochs"]), "warmup_factor": float(s["warmup_factor"]),
            "min_factor": float(s["min_factor"])}


def test_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``evaluate_features`` (besides features and items)."""
    t = cfg["test"]
    return {"normalize": bool(t["normalize"]), "rerank": bool(t["rerank"]), "qe_k": int(t["qe_k"])}
