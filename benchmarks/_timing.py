"""Timing helper shared by the benchmark scripts (they import it from this folder)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeat: int, warmup: int = 0) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn()`` in seconds, after ``warmup`` calls.

    The minimum is the least noisy estimate on a shared machine: noise only ever adds time.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
