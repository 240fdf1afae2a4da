"""A long session: index once, then search and seek hundreds of times; memory stays flat, and the GUI
thread stays free while playing and seeking, even on a library that takes seconds to answer."""

from __future__ import annotations

import gc
import random
import threading
import time

import psutil
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from tests.GUI.conftest import GapMeter
from tests.GUI.helpers import draw_query, search, seek_shown
from tests.GUI.test_app import FROZEN_GUI_MS

SEEKS = 300
SEARCHES = 20
WARMUP_SEEKS = 30
WARMUP_SEARCHES = 2


def _rss_mb() -> float:
    gc.collect()
    QApplication.processEvents()
    return psutil.Process().memory_info().rss / 2**20


def test_many_searches_and_seeks_keep_memory_flat(make_window, indexed_db, indexed_session, qtbot):
    w = make_window(indexed_db)
    assert w.open_video(indexed_session.clip)
    draw_query(w, qtbot, frame=20)
    rng = random.Random(11)
    frames = w.player.frame_count

    def work(searches: int, seeks: int) -> int:
        shown = 0
        for n in range(searches):
            result = search(w, qtbot, click=False)
            assert result.hits
            for k in range(seeks // searches):
                if k % 5 == 0 and result.hits:
                    hit = rng.choice(result.hits)
                    w.show_hit(hit)  # seek to a hit: frame + boxes + highlight
                    assert w.player.frame_index == hit.best_frame
                else:
                    target = rng.randrange(frames)
                    w.player.seek(target)
                    assert w.player.frame_index == target
                shown += 1
            if n % 4 == 0:
                w.results.set_threshold(rng.uniform(0.5, 0.9))
        return shown

    t0 = time.perf_counter()
    work(WARMUP_SEARCHES, WARMUP_SEEKS)
    before = _rss_mb()
    t1 = time.perf_counter()
    shown = work(SEARCHES - WARMUP_SEARCHES, SEEKS - WARMUP_SEEKS)
    elapsed = time.perf_counter() - t1
    qtbot.waitUntil(lambda: not w.jobs.busy(), timeout=60000)
    after = _rss_mb()
    growth = after - before
    print(f"\n[GUI] long session: {SEARCHES} searches + {SEEKS} seeks ({shown} seeks after warm-up in "
          f"{elapsed:.1f} s, "
          f"total {time.perf_counter() - t0:.1f} s); RSS {before:.0f} MB after warm-up -> {after:.0f} MB "
          f"(growth {growth:+.1f} MB)")
    assert growth < 50
    assert not [m for m in w.messages if m[0] == "error"], w.messages
    assert w.library.query_item(w.model.result.query_id) is not None


STEPS = 300
"""Seeks and frame steps of the play-and-seek session (one every 40 ms, as a user dragging and clicking)."""

SLOW_READ_S = 3.0
"""How long each read of the slow library takes: longer than FROZEN_GUI_MS, so a read on the GUI thread
would show as a frozen window."""


def _play_and_seek(w, qtbot, steps: int, play_s: float, seed: int) -> tuple[float, float, int]:
    """Seek and step ``steps`` times from a 40 ms timer, then play ``play_s`` seconds; returns
    ``(largest GUI-thread timer gap ms, mean gap ms, frames shown)``."""
    rng = random.Random(seed)
    frames = w.player.frame_count
    shown: list[int] = []
    w.frameShown.connect(shown.append)
    left = [steps]

    def act() -> None:
        if left[0] <= 0:
            return
        left[0] -= 1
        if left[0] % 3 == 0:
            w.player.seek(rng.randrange(frames))              # a click on the timeline
        else:
            w.player.step(1 if rng.random() < 0.8 else -1)    # the arrow keys
    driver = QTimer()
    driver.setInterval(40)
    driver.timeout.connect(act)
    meter = GapMeter()
    meter.start()
    driver.start()
    qtbot.waitUntil(lambda: left[0] <= 0, timeout=steps * 40 * 20)
    driver.stop()
    w.player.seek(100)
    w.player.play()
    qtbot.wait(int(play_s * 1000))
    w.player.pause()
    meter.stop()
    w.frameShown.disconnect(shown.append)
    return meter.max_gap_ms, meter.mean_gap_ms, len(shown)


def test_playing_and_seeking_keep_the_gui_thread_free_even_on_a_slow_library(make_window, indexed_db,
                                                                            indexed_session, qtbot,
                                                                            monkeypatch):
    w = make_window(indexed_db)
    assert w.open_video(indexed_session.clip)
    draw_query(w, qtbot, frame=20)
    search(w, qtbot, click=False)
    store, gui = w.engine.store, threading.get_ident()
    read = store.sightings_in_frame
    readers: list[int] = []
    delay = [0.0]

    def timed_read(*args, **kwargs):  # the real read, on whichever thread asks, after a delay if set
        readers.append(threading.get_ident())
        time.sleep(delay[0])
        return read(*args, **kwargs)

    monkeypatch.setattr(store, "sightings_in_frame", timed_read)
    w.jobs.boxes.clear()
    fast = _play_and_seek(w, qtbot, STEPS, 5.0, seed=3)
    spans = w.jobs.boxes.reads
    # The same on a library that takes seconds to answer (a network drive): spans read so far are forgotten.
    w.jobs.boxes.clear()
    delay[0] = SLOW_READ_S
    slow = _play_and_seek(w, qtbot, STEPS // 3, 3.0, seed=4)
    print(f"\n[GUI] playing and seeking ({STEPS} seeks and steps, then 5 s of playing): largest GUI-thread "
          f"timer gap {fast[0]:.0f} ms (mean {fast[1]:.1f} ms), {fast[2]} frames shown, {spans} spans of "
          f"boxes read off the GUI thread; on a library taking {SLOW_READ_S:.0f} s a read: largest gap "
          f"{slow[0]:.0f} ms (mean {slow[1]:.1f} ms), {slow[2]} frames shown")
    assert readers and gui not in readers, "a read of the boxes ran on the GUI thread"
    assert fast[0] < FROZEN_GUI_MS and slow[0] < FROZEN_GUI_MS
    assert fast[2] > STEPS // 4 and slow[2] > STEPS // 12  # the pictures kept coming, boxes or not
    delay[0] = 0.0
    seek_shown(w, qtbot, 20, boxes=True)                   # and the boxes come once the library answers
    assert not [m for m in w.messages if m[0] == "error"], w.messages
