"""Shared command-line plumbing: errors become one line on stderr and exit status 1."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run_main(body: Callable[[], int], what: str) -> int:
    """Run ``body``; print ``"<what> failed: <one line>"`` to stderr and return 1 on any error."""
    try:
        return body()
    except KeyboardInterrupt:
        print(f"{what} interrupted", file=sys.stderr, flush=True)
        return 130
    except KeyError as exc:  # registry lookups: the message lists the valid names
        print(f"{what} failed: {exc.args[0] if exc.args else exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        text = str(exc).strip()
        msg = text.splitlines()[0] if text else type(exc).__name__
        print(f"{what} failed: {msg}", file=sys.stderr, flush=True)
        return 1
