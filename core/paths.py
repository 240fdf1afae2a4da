"""Where things live on disk: the models folder, the manifest, the default database."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The project root (the folder holding ``core/``, ``GUI/``, ``models/``)."""


def models_dir() -> Path:
    """Folder holding model files: ``$REID_MODELS_DIR`` or ``<repo>/models``."""
    return Path(os.environ.get("REID_MODELS_DIR", REPO_ROOT / "models"))


def manifest_path() -> Path:
    """The model manifest shipped with the project."""
    return REPO_ROOT / "models" / "manifest.json"


def default_db_path() -> Path:
    r"""Default library database: ``$REID_DB`` or a per-user data folder.

    Linux/macOS: ``$XDG_DATA_HOME/reid-video-search/library.sqlite`` (default
    ``~/.local/share``); Windows: ``%LOCALAPPDATA%\reid-video-search\library.sqlite``.
    """
    if os.environ.get("REID_DB"):
        return Path(os.environ["REID_DB"])
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "reid-video-search" / "library.sqlite"
