"""core stays free of Qt, torch and training/: import every core module in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

from core import paths

CHECK = r"""
import importlib, json, pkgutil, sys
import core

names = ["core"]
for info in pkgutil.walk_packages(core.__path__, "core."):
    if info.name.rsplit(".", 1)[-1] == "__main__":  # importing it would run the command line
        continue
    names.append(info.name)
errors = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # report every broken module, not just the first
        errors[name] = f"{type(exc).__name__}: {exc}"
banned = sorted(m for m in sys.modules
                if m.split(".")[0] in ("PySide6", "shiboken6", "torch", "torchvision", "training", "GUI"))
print(json.dumps({"modules": names, "errors": errors, "banned": banned}))
"""


def test_core_imports_without_qt_torch_or_training():
    proc = subprocess.run([sys.executable, "-c", CHECK], cwd=paths.REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"core.onnx_model", "core.detection", "core.reid", "core.types"} <= set(report["modules"])
    assert not report["errors"], f"core modules fail to import: {report['errors']}"
    assert not report["banned"], f"importing core pulled in {report['banned']}"
