"""An honest estimate of the time left of long work (indexing, exporting clips), for any display.

The speed of indexing is not steady: the first frames pay for the models' warm-up, a
checkpoint now and then embeds the finished tracks, and on a shared machine other work
comes and goes. A rate measured since the start (what a progress item carries) is
fooled by all of that: on the first batch of frames it is far too fast. An
:class:`EtaEstimator` keeps the progress of the last ``window_s`` seconds and estimates
from the speed over that window, so the estimate follows what the work does *now*,
and it adds ``tail_s``, the time of what is known to follow the last unit (the search
after indexing). No estimate is given until the progress seen spans ``min_span_s``
seconds: the first, noisy second shows no figure rather than a wrong one.

Qt-free: the GUI's progress display and the command line use the same class.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class EtaEstimator:
    """Time left of work counted in units (frames), from the speed of the recent past.

    Args:
        window_s: Seconds of recent progress the speed is measured over.
        min_span_s: No estimate before the progress seen spans this long.
        tail_s: Seconds of work known to follow the last unit (added to every estimate).
        clock: Seconds, monotonic (default ``time.monotonic``).

    Example::

        eta = EtaEstimator(tail_s=1.5)
        left = eta.update(done, total)    # None until the speed is known
    """

    def __init__(self, window_s: float = 10.0, min_span_s: float = 1.5, tail_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window_s <= 0 or min_span_s < 0 or tail_s < 0:
            raise ValueError("window_s must be > 0, min_span_s and tail_s >= 0")
        self.window_s = float(window_s)
        self.min_span_s = float(min_span_s)
        self.tail_s = float(tail_s)
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()
        self._total = 0

    def reset(self) -> None:
        """Forget the progress seen (new work starts)."""
        self._samples.clear()
        self._total = 0

    def update(self, done: int, total: int, now: float | None = None) -> float | None:
        """Record progress and return the estimated seconds left (``None`` while unknown).

        Args:
            done: Units done so far (frames; may start above 0 when work resumes).
            total: Units in all (0 or less: unknown, no estimate).
            now: The time of this progress (default: the clock).
        """
        now = self._clock() if now is None else float(now)
        done, total = int(done), int(total)
        if total != self._total or (self._samples and done < self._samples[-1][1]):
            self._samples.clear()  # another video, or a count that went back: start afresh
        self._total = total
        self._samples.append((now, done))
        # Keep the newest sample older than the window too, so the window is always spanned.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        return self.estimate()

    def estimate(self) -> float | None:
        """Seconds left from the progress recorded (``None`` while unknown)."""
        if not self._samples or self._total <= 0:
            return None
        if self._samples[-1][1] >= self._total:
            return self.tail_s
        rate = self.rate
        if rate is None or rate <= 0:
            return None
        return (self._total - self._samples[-1][1]) / rate + self.tail_s

    @property
    def rate(self) -> float | None:
        """Units per second over the window (``None`` before it spans ``min_span_s``)."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 < max(self.min_span_s, 1e-9):
            return None
        return (d1 - d0) / (t1 - t0)
