"""The window's file dialogs and its About box; each dialog starts in the folder last used."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from core.errors import ReidSearchError
from core.video import VIDEO_EXTENSIONS, video_files
from GUI.query_panel import IMAGE_SUFFIXES, is_image_file
from GUI.settings import APPLICATION

if TYPE_CHECKING:
    from GUI.main_window import MainWindow


def videos_in(folder: str | Path) -> list[str]:
    """The videos of a folder (not recursive), in natural name order.

    Raises:
        ReidSearchError: The folder has no video (one sentence naming it and the endings looked for).
    """
    folder = Path(folder)
    videos = [str(p) for p in video_files(folder)] if folder.is_dir() else []
    if not videos:
        raise ReidSearchError(f"{folder}: no video files found in this folder "
                              f"(looked for {', '.join(VIDEO_EXTENSIONS)}).")
    return videos


def sort_dropped(files: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Files dropped on the window as ``(photos, videos, folders)``."""
    images = [f for f in files if is_image_file(f)]
    folders = [f for f in files if Path(f).is_dir()]
    return images, [f for f in files if f not in images and f not in folders], folders


class FileDialogs:
    """Asks for files and folders, starting where the last dialog ended.

    Args:
        parent: The window the dialogs belong to.
        last_dir: Returns the folder to start in: the last one used, or that of the last video
            opened (``""``: the home folder).
        remember: Called with the folder of each file or folder chosen.
    """

    def __init__(self, parent: QWidget, last_dir: Callable[[], str], remember: Callable[[str], None]) -> None:
        self.parent = parent
        self._last_dir = last_dir
        self._remember_dir = remember

    def start_folder(self) -> str:
        """Where the next dialog starts: the folder last used (the home folder when there is none)."""
        return self._last_dir() or str(Path.home())

    def _remember(self, path: str) -> None:
        self._remember_dir(str(Path(path).parent if Path(path).is_file() else Path(path)))

    def _files(self, title: str, kind: str, suffixes: Sequence[str]) -> list[str]:
        pattern = " ".join(f"*{s}" for s in suffixes)
        files, _ = QFileDialog.getOpenFileNames(self.parent, title, self.start_folder(),
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
        folder = QFileDialog.getExistingDirectory(self.parent, title, self.start_folder())
        if folder:
            self._remember(folder)
        return folder

    def export_file(self) -> str:
        """A ``.csv`` or ``.json`` file to export hits to (``""`` if cancelled)."""
        start = str(Path(self.start_folder()) / "hits.csv")
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


def lay_out_dialog(dialog: QDialog, form: QFormLayout, note: QWidget, ok_text: str = "") -> None:
    """Lay a dialog out: its form, a note under it, then OK (named ``ok_text`` when given) and Cancel."""
    std = QDialogButtonBox.StandardButton
    buttons = QDialogButtonBox(std.Ok | std.Cancel)
    if ok_text:
        buttons.button(std.Ok).setText(ok_text)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addLayout(form)
    layout.addWidget(note)
    layout.addWidget(buttons)


def offer_action(window: MainWindow, icon: QMessageBox.Icon, text: str, action: str,
                 on_accept: Callable[[], object], *, informative: str = "", decline: str = "") -> QMessageBox:
    """A non-modal message box offering one action (its default button); ``on_accept`` runs when chosen.

    ``decline`` names the other button (default: Close). The box becomes ``window.last_message_box``.
    """
    box = QMessageBox(icon, APPLICATION, text, QMessageBox.StandardButton.NoButton if decline
                      else QMessageBox.StandardButton.Close, window)
    if informative:
        box.setInformativeText(informative)
    accept = box.addButton(action, QMessageBox.ButtonRole.AcceptRole)
    if decline:
        box.addButton(decline, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(accept)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.buttonClicked.connect(lambda button: button is accept and on_accept())
    box.open()
    window.last_message_box = box
    return box
