"""A long session: index once, then search and seek hundreds of times; memory stays flat."""

from __future__ import annotations

import gc
import random
import time

import psutil
from PySide6.QtWidgets import QApplication

from tests.GUI.helpers import draw_query, search

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
    frames = w.player.source.frame_count

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
