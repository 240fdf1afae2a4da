"""The window's file dialogs and its About box; each dialog starts in the folder last used."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core.video import VIDEO_EXTENSIONS
from GUI.query_panel import IMAGE_SUFFIXES
from GUI.settings import APPLICATION


class FileDialogs:
    """Asks for files and folders, starting where the last dialog ended.

    Args:
        parent: The window the dialogs belong to.
        last_dir: Returns the folder of the last dialog (``""``: the home folder).
        remember: Called with the folder of each file or folder chosen.
    """

    def __init__(self, parent: QWidget, last_dir: Callable[[], str], remember: Callable[[str], None]) -> None:
        self.parent = parent
        self._last_dir = last_dir
        self._remember_dir = remember

    def _start(self) -> str:
        return self._last_dir() or str(Path.home())

    def _remember(self, path: str) -> None:
        self._remember_dir(str(Path(path).parent if Path(path).is_file() else Path(path)))

    def _files(self, title: str, kind: str, suffixes: Sequence[str]) -> list[str]:
        pattern = " ".join(f"*{s}" for s in suffixes)
        files, _ = QFileDialog.getOpenFileNames(self.parent, title, self._start(),
                                                f"{kind} ({pattern});;All files (*)")
        if files:
            self._remember(files[0])
        return files

    def videos(self) -> list[str]:
        """Video files to open (empty if cancelled)."""
        return self._files("Open video", "Videos", VIDEO_EXTENSIONS)

    def photos(self) -> list[str]:
        """Photos of the person to find (empty if cancelled)."""
        return self._files("Add photos of the person", "Images", IMAGE_SUFFIXES)

    def folder(self, title: str) -> str:
        """A folder (``""`` if cancelled)."""
        folder = QFileDialog.getExistingDirectory(self.parent, title, self._start())
        if folder:
            self._remember(folder)
        return folder

    def export_file(self) -> str:
        """A ``.csv`` or ``.json`` file to export hits to (``""`` if cancelled)."""
        start = str(Path(self._start()) / "hits.csv")
        path, chosen = QFileDialog.getSaveFileName(self.parent, "Export hits", start,
                                                   "CSV spreadsheet (*.csv);;JSON (*.json)")
        if not path:
            return ""
        if Path(path).suffix.lower() not in (".csv", ".json"):
            path += ".json" if "json" in chosen.lower() else ".csv"
        self._remember(path)
        return path


def show_about(parent: QWidget, db_path: Path) -> None:
    """The About box (names the library database in use)."""
    QMessageBox.about(parent, f"About {APPLICATION}",
                      f"<b>{APPLICATION}</b><p>Find a person in videos from a photo: people are "
                      "detected (YOLO), tracked, described by a ReID model and searched with FAISS. "
                      "Index a video once, search many people instantly.</p>"
                      f"<p>Library: {db_path}</p>")
