"""How the window reads a folder of images: as video frames (a sequence) or as photos.

Opening a folder without videos but with images asks which it is, proposing what
:func:`core.photos.classify_folder` worked out (and saying why); the answer goes to the engine
(:meth:`core.engine.Engine.read_as`, also after the engine is rebuilt), so indexing reads the
folder that way. A photo collection is shown photo by photo (:class:`core.photo_source.PhotoSource`);
the library tells which of its videos are photo collections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox, QWidget

from core.errors import ReidSearchError
from core.media import IMAGE_EXTENSIONS, video_files
from core.photos import classify_folder
from GUI.window_model import norm_path

if TYPE_CHECKING:
    from core.engine import Engine, VideoInfo


def ask_kind(parent: QWidget, folder: str, proposed: str, why: str) -> str:
    """Ask whether ``folder`` holds photos or video frames; ``""`` when the user cancels."""
    box = QMessageBox(QMessageBox.Icon.Question, "Open a folder of images",
                      f"How should {Path(folder).name} be searched?\n\nIt looks like "
                      f"{'a photo collection' if proposed == 'photos' else 'frames of one video'} ({why}).",
                      QMessageBox.StandardButton.Cancel, parent)
    photos = box.addButton("Photos: every person in every photo", QMessageBox.ButtonRole.AcceptRole)
    frames = box.addButton("Video frames: one camera, tracked", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(photos if proposed == "photos" else frames)
    box.exec()
    return {photos: "photos", frames: "sequence"}.get(box.clickedButton(), "")


class ImageFolders:
    """The folders of images the window knows, and how each is read (see the module notes).

    Args:
        parent: The window (parent of the question).
        engine: Returns the engine once loaded (``None`` before).
        interactive: Ask the user; otherwise take what the rule proposes.
    """

    def __init__(self, parent: QWidget, engine: Callable[[], Engine | None], *, interactive: bool) -> None:
        self.parent, self.engine, self.interactive = parent, engine, interactive
        self.kinds: dict[str, str] = {}
        """``{normalised folder: "sequence" | "photos"}`` chosen in this session or known to the library."""

    def choose(self, folder: str | Path, images: str | None = None) -> str | None:
        """How to open ``folder``: ``None`` (videos, or no images), ``"sequence"``, ``"photos"`` or ``""``.

        ``images`` when given, else the user's answer (``""``: cancelled) or, not interactive, the rule's.

        Raises:
            ReidSearchError: The folder cannot be read.
        """
        folder = str(folder)
        if video_files(folder):
            return None
        try:
            found = classify_folder(folder)
        except ReidSearchError:
            return None  # no images either: the caller says there is no video
        kind = images or (ask_kind(self.parent, folder, found.kind, found.reason) if self.interactive
                          else found.kind)
        if kind:
            self.set(folder, kind)
        return kind

    def set(self, folder: str | Path, kind: str) -> None:
        """Read ``folder`` as ``kind`` from now on (the engine too)."""
        self.kinds[norm_path(folder)] = kind
        engine = self.engine()
        if engine is not None:
            engine.read_as(folder, kind)

    def is_photos(self, path: str | Path) -> bool:
        """Whether ``path`` is shown as a photo collection (an image file always is)."""
        if Path(path).is_file() and Path(path).suffix.lower() in IMAGE_EXTENSIONS:
            return True
        return self.kinds.get(norm_path(path)) == "photos"

    def learn(self, videos: Iterable[VideoInfo]) -> None:
        """Take in which of the library's videos are photo collections (a choice made here wins)."""
        for video in videos:
            if video.kind == "photos":
                self.kinds.setdefault(norm_path(video.path), "photos")

    def apply(self, engine: Engine) -> None:
        """Tell a (new) engine how the folders chosen are read."""
        for folder, kind in self.kinds.items():
            engine.read_as(folder, kind)
