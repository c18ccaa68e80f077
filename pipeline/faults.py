"""Deterministic interruption points for the kill tests.

A test sets ``TRIBERT_KILL_AT_<POINT>=N`` in a stage's environment; when the stage reaches that
point for the N-th time (a training step, a decoded or rendered video) the process SIGKILLs
itself, exactly where a power cut or an OOM kill could strike, with no timer involved. Unset (the
normal case) each call costs one dictionary look-up.
"""
from __future__ import annotations

import os
import signal


def kill_point(point: str, count: int) -> None:
    """SIGKILL this process when ``TRIBERT_KILL_AT_<point>`` equals ``count``."""
    want = os.environ.get(f"TRIBERT_KILL_AT_{point}")
    if want is not None and int(want) == count:
        os.kill(os.getpid(), signal.SIGKILL)
