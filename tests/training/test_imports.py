"""The training package never pulls in torchvision or the GUI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = ["training.train", "training.evaluate", "training.export", "training.mine_tracks",
           "training.benchmark", "training.engine",
           "training.data.mot", "training.evaluation.visualize", "training.evaluation.features"]


def test_no_torchvision_and_no_gui_imports(tmp_path):
    code = ("import importlib, sys\n"
            f"for m in {MODULES!r}: importlib.import_module(m)\n"
            "import training.evaluation.visualize as v\n"
            "v.plot_history([{'epoch': 1, 'loss': 1.0}], sys.argv[1])\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'GUI', 'PySide6'))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "curves.png")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
