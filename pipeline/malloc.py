"""Keep freed memory in the process instead of handing it back to the kernel (glibc only).

glibc's ``malloc`` serves every request over its mmap threshold (128 KiB, growing to at most
32 MiB) with a fresh ``mmap`` and returns it with ``munmap`` on ``free``. A training step
allocates and frees hundreds of activation and gradient buffers of 1-40 MB, so each step maps
the same gigabytes anew and pays a page fault per 4 KiB page on first touch; under a hypervisor
those faults are expensive. Measured on 2 cores of this project's machine kind (AMD EPYC, KVM),
``tribert bench model``: the tiny step 0.54 -> 0.37 s at batch 8, the paper-preset step
3.8 -> 2.4 s, peak memory +4-10% (``docs/experiments.md`` section 25).

:func:`keep_freed_memory` sets ``M_MMAP_MAX`` to 0 (every block comes from the heap, which
reuses freed blocks) and ``M_TRIM_THRESHOLD`` to 2 GiB, the largest it takes (the
heap's free top is not trimmed), so
the process stays at its peak footprint and never page-faults the same memory twice. The same
settings as glibc tunables (:data:`TUNABLES`) apply them to a child process from its start,
which is how ``tribert bench model --against-official`` gives the official step the same
allocator. ``TRIBERT_MALLOC=default`` leaves glibc's defaults everywhere.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int
TUNABLES = f"glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"

_state: str | None = None


def enabled() -> bool:
    """Whether this process should keep freed memory (glibc, and not opted out)."""
    return (os.environ.get("TRIBERT_MALLOC", "keep") != "default"
            and platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


def keep_freed_memory() -> str:
    """Apply the settings once per process; returns ``"keep-freed"`` or ``"default"``."""
    global _state
    if _state is None:
        _state = "default"
        if enabled():
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if (libc.mallopt(M_MMAP_MAX, 0) == 1
                    and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1):
                _state = "keep-freed"
    return _state


def child_env(env: dict | None = None) -> dict:
    """``env`` (default: this process's) for a child process with the same allocator settings."""
    env = dict(os.environ if env is None else env)
    if keep_freed_memory() == "keep-freed":
        prior = env.get("GLIBC_TUNABLES")
        env["GLIBC_TUNABLES"] = TUNABLES if not prior else f"{prior}:{TUNABLES}"
    return env
