"""Who to find: photos and drawn boxes checked when they are added, one query for one person.

:class:`QueryControl` stands between what the user gives (photo files, dropped images, a
box drawn on the video) and the query panel (:class:`GUI.query_panel.QueryPanel`):

* **One query is one person.** Photos of a person are averaged into one query, so when
  photos are already there, new ones are not silently added: the panel asks *Add to this
  person* or *New person*. A new person (or *Clear*) also clears the old search: its
  hits, its timeline and its boxes.
* **Every photo is checked when it is added**, by the person detector, as the search will
  use it (``core.engine.Engine.check_photo``, on a worker thread): a photo or a drawn box
  with nobody in it is taken out again at once, with one sentence naming what the user
  gave ("the box drawn at frame 6 of vtest.avi", the photo's file name), never the
  internal file a drawn box is kept in; a photo that passes gets a note saying what the
  search will use of it.
* A search waits for the checks still running (:meth:`QueryControl.when_checked`).

Drawn boxes are kept as PNG files next to the library database
(:func:`GUI.query_panel.save_crop`; :func:`GUI.query_panel.drawn_name` names them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRect, Signal, Slot

from core.errors import ReidSearchError
from core.text import plural
from core.types import Frame
from GUI.background import Background
from GUI.query_panel import QueryPanel, drawn_frame, drawn_name, is_image_file, photo_name, save_crop
from GUI.window_model import WindowModel

if TYPE_CHECKING:
    from core.engine import Engine, PhotoCheck
    from GUI.workers import Job

CHECK_JOB = "check photos"

def check_note(name: str, check: PhotoCheck, drawn: bool) -> str:
    """One sentence on what the search will use of a photo that passed its check."""
    first = name[0].upper() + name[1:] if drawn else name  # "The box drawn at...", a file name as it is
    if drawn:
        if check.whole:
            return f"{first}: used as drawn."
        return f"{first}: {plural(check.people, 'person', 'people')} in it; the largest is used."
    if check.whole:
        extra = f" ({plural(check.people, 'person', 'people')} in it)" if check.people > 1 else ""
        return f"{first}: a photo of the person, used whole{extra}."
    if check.people == 1:
        return f"{first}: the person in the photo is used."
    return f"{first}: {check.people} people in the photo; the largest is used."


@dataclass(frozen=True)
class _Given:
    """A photo the user gave: its file and whether it is a box drawn on the video."""

    path: str
    drawn: bool


def check_photos_body(engine: Engine, paths: Sequence[str]) -> Callable[[Job], tuple]:
    """Job body: ``((path, PhotoCheck or the error sentence), ...)`` for each photo."""
    paths = tuple(paths)

    def body(job: Job) -> tuple:
        out = []
        for path in paths:
            try:
                out.append((path, engine.check_photo(path)))
            except ReidSearchError as exc:
                out.append((path, str(exc)))
        return tuple(out)

    return body


class QueryControl(QObject):
    """Takes photos and drawn boxes in, checks them, and keeps one query to one person (see the notes).

    Args:
        panel: The query panel.
        model: The window's model (its result is cleared with a new person).
        jobs: The engine and its jobs.
        parent: Owner.

    Signals:
        message(str, str): ``(level, text)`` to tell the user.
        checked(): Every check asked for has ended.
    """

    message = Signal(str, str)
    checked = Signal()

    def __init__(self, panel: QueryPanel, model: WindowModel, jobs: Background,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.model = model
        self.jobs = jobs
        self._offered: list[_Given] = []
        self._checking: set[str] = set()
        self._waiting: list[Callable[[], object]] = []
        panel.intake = self.add_files
        panel.answered.connect(self._answered)
        panel.clearRequested.connect(self.clear)
        jobs.engineFailed.connect(lambda _text: self._failed(sorted(self._checking), "no models loaded"))

    # ------------------------------------------------------------------ in
    def add_files(self, paths: Sequence[str | Path]) -> None:
        """Photos chosen or dropped: asked about when a person is there already, then checked."""
        given = []
        for p in paths:
            if not Path(p).is_file():
                self.message.emit("error", f"{Path(p).name}: photo not found ({p}).")
            elif not is_image_file(p):
                self.message.emit("error", f"{Path(p).name}: not a photo (use JPEG, PNG, BMP, WebP or TIFF).")
            else:
                given.append(_Given(str(Path(p).resolve()), drawn=False))
        self._offer(given)

    def add_crop(self, frame: Frame | None, rect: QRect, folder: Path, video_path: str | None) -> str | None:
        """Save the box ``rect`` drawn on ``frame`` as a PNG in ``folder`` and offer it (:meth:`add_drawn`).

        The PNG (in ``folder`` so that the stored query keeps a path) is returned; ``None`` without a frame.

        Raises:
            ValueError: The box is empty or outside the frame (one sentence).
        """
        if frame is None:
            return None
        out = save_crop(frame.image, rect, folder, f"{Path(video_path or 'video').name}_f{frame.index:06d}")
        self.add_drawn(out)
        return str(out)

    def add_drawn(self, path: str | Path) -> None:
        """A box drawn on the video, saved as ``path``: asked about, then checked like a photo."""
        self._offer([_Given(str(Path(path).resolve()), drawn=True)])

    def set_photos(self, paths: Sequence[str]) -> None:
        """Put a past search's photos back (no question: one person), checked again for their notes."""
        self._drop_offer()
        self.panel.clear()
        self._add([_Given(str(p), drawn=drawn_name(p) is not None) for p in paths if Path(p).is_file()])

    def clear(self) -> None:
        """Remove the photos and the search made with them (its hits, timeline and boxes)."""
        self._drop_offer()
        self.panel.clear()
        self.model.result = None

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        """Whether photos are being checked."""
        return bool(self._checking)

    def when_checked(self, call: Callable[[], object]) -> None:
        """Run ``call`` once every photo asked for is checked (now, when none is being checked)."""
        if self._checking:
            self._waiting.append(call)
        else:
            call()

    def friendly(self, text: str) -> str:
        """``text`` with the files of drawn boxes named as the user knows them."""
        for path in self.panel.photos():
            name = drawn_name(path)
            if name is not None:
                text = text.replace(path, name)
        return text

    # ------------------------------------------------------------------ one query, one person
    def _offer(self, given: list[_Given]) -> None:
        if not given:
            return
        if not self.panel.photos():
            self._add(given)
            return
        self._drop_offer()
        self._offered = given
        what = photo_name(given[0].path) if len(given) == 1 else plural(len(given), "photo")
        have = plural(len(self.panel.photos()), "photo")
        self.panel.ask(f"Is {what} the same person as the {have} above? Photos of one person are "
                       "combined into one search.",
                       [("add", "Add to this person"), ("new", "New person"), ("cancel", "Cancel")])

    @Slot(str)
    def _answered(self, key: str) -> None:
        given, self._offered = self._offered, []
        if key == "cancel":
            self._forget(given)
            return
        if key == "new":
            self.panel.clear()
            self.model.result = None  # the hits of the other person go with their photos
        self._add(given)

    def _drop_offer(self) -> None:
        if self.panel.asking:
            self.panel.question.hide()
        self._forget(self._offered)
        self._offered = []

    @staticmethod
    def _forget(given: Sequence[_Given]) -> None:
        for g in given:  # a drawn box the user did not keep is not kept on disk either
            if g.drawn:
                with contextlib.suppress(OSError):
                    Path(g.path).unlink()

    # ------------------------------------------------------------------ checks
    def _add(self, given: list[_Given]) -> None:
        added = []
        for g in given:
            label = f"frame {drawn_frame(g.path)}" if g.drawn else None
            note = f"{photo_name(g.path)}: looking for the person..."
            if self.panel.add_photo(g.path, label=label, note=note):
                added.append(g)
            elif g.drawn:
                self._forget([g])
        if not added:
            return
        self._checking.update(g.path for g in added)
        self._check(added)

    def _check(self, given: list[_Given]) -> None:
        engine = self.jobs.engine
        if engine is None:  # the models are loading: check as soon as they are in
            self.jobs.when_ready(lambda: self._check(given))
            return
        drawn = {g.path for g in given if g.drawn}
        self.jobs.run(CHECK_JOB, check_photos_body(engine, [g.path for g in given]),
                      result=lambda results: self._checked(results, drawn),
                      error=lambda text: self._failed([g.path for g in given], text))

    def _checked(self, results: tuple, drawn: set[str]) -> None:
        for path, outcome in results:
            self._checking.discard(path)
            name = photo_name(path)
            if isinstance(outcome, str):  # refused: out again at once, and said why
                self.panel.remove_photo(path)
                if path in drawn:
                    self._forget([_Given(path, True)])
                self.message.emit("error", _sentence(outcome.replace(path, name), name))
                continue
            self.panel.set_note(path, check_note(name, outcome, path in drawn))
            if path in drawn:
                self.message.emit("info", f"Added the person in {name}; press Search to find them.")
        self._release()

    def _failed(self, paths: list[str], text: str) -> None:
        self._checking.difference_update(paths)
        for path in paths:
            self.panel.set_note(path, f"{photo_name(path)}: not checked ({text})")
        self._release()

    def _release(self) -> None:
        if self._checking:
            return
        waiting, self._waiting = self._waiting, []
        self.checked.emit()
        for call in waiting:
            call()


def _sentence(text: str, name: str) -> str:
    """The check's sentence: "The box drawn at ..." starts with a capital, a file name as it is."""
    return text[0].upper() + text[1:] if text.startswith("the box drawn") else text
