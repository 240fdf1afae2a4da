"""The house rules of the code base, checked on the real source tree and the real test set-up
(the import rules between layers are in ``tests/core/test_layering.py``).

* no file in ``core/`` or ``GUI/`` is longer than a newcomer reads in one sitting;
* on CI a missing ``../shared/data`` fails the run instead of skipping half the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO_ROOT / folder).rglob("*.py"))


def test_no_file_in_core_or_gui_is_too_long():
    long = {str(p.relative_to(REPO_ROOT)): n for p in _python_files("core", "GUI")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these files by job (more than {MAX_LINES} lines): {long}"


def test_missing_shared_data_fails_on_ci(tmp_path):
    """With ``CI`` set and no shared data, a test that needs it fails (and without ``CI`` it skips)."""
    test = "tests/core/test_video.py::test_vtest_read_exact_random_order"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["REID_SHARED_DATA"] = str(tmp_path / "no-such-folder")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
    skipped = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout[-2000:]
    failed = subprocess.run(args, cwd=REPO_ROOT, env={**env, "CI": "true"}, capture_output=True, text=True,
                            timeout=300)
    assert failed.returncode == 1 and "CI must have it" in failed.stdout, failed.stdout[-2000:]
