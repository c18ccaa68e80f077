"""Choose each convolutional network's memory format on this machine, by measurement, and
cache the choice (``train.memory_format: auto``; the layouts themselves: :mod:`model.layout`).

:func:`choose` times one forward and backward of a real batch with every network in NCHW, then
each network in channels-last, and keeps what is faster; :func:`remember` caches the answer per
CPU model, torch version, threads, model configuration and batch, so a machine measures once and
later runs use the same layout. Timings taken while other work shares the cores are not kept.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch
from torch import nn

from model.layout import apply, uniform
from pipeline.provenance import cpu_info

STEADY = 1.2   # median / fastest of the repeats at most this, or the machine was busy


def _timed(run: Callable[[], None], repeats: int) -> tuple[float, bool]:
    """The fastest of ``repeats`` runs after a warm-up (oneDNN primitives, the allocator), and
    whether the runs were steady. Other work on the cores only ever adds time, so the minimum
    is the best estimate; but two torch threads on two busy cores stall each other by 5-10x,
    and then no estimate is worth keeping."""
    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times), sorted(times)[len(times) // 2] <= STEADY * min(times)


def choose(model: nn.Module, step: Callable[[nn.Module], None], repeats: int = 5,
           margin: float = 0.03, log: Optional[Callable[[str], None]] = None
           ) -> tuple[dict[str, str], bool]:
    """Time ``step(model_copy)`` (one forward and backward of a real batch) with every network
    in NCHW, then switch one network at a time to channels-last and keep it where the step time
    (the fastest of ``repeats``) falls by more than ``margin``. Runs on a copy of the model,
    with the global RNG state restored afterwards, so the model, its BatchNorm statistics and
    the random draws of the run it precedes are untouched. Returns {network: format name} and
    whether every timing was steady (:data:`STEADY`)."""
    rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    trial = copy.deepcopy(model)

    def run():
        trial.zero_grad(set_to_none=True)   # gradients are made in the layout being timed
        step(trial)

    try:
        choice = uniform(trial, "contiguous")
        apply(trial, choice)
        best, steady = _timed(run, repeats)
        figures = {"contiguous": round(best, 4)}
        for name in list(choice):
            apply(trial, {name: "channels_last"})
            t, ok = _timed(run, repeats)
            steady &= ok
            figures[f"{name}=channels_last"] = round(t, 4)
            if t < best * (1 - margin):
                choice[name], best = "channels_last", t
            else:
                apply(trial, {name: "contiguous"})
    finally:
        del trial
        torch.random.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    if log:
        log(f"memory format: step seconds {json.dumps(figures)} -> {json.dumps(choice)}"
            + ("" if steady else " (unsteady timings: the cores are busy; not cached)"))
    return choice, steady


# Bumped whenever model.layout changes what a layout runs (2: one-channel tensors re-strided, so
# channels-last reaches the first convolutions too), so that cached choices are measured again.
LAYOUT_REVISION = 2


def cache_key(model: nn.Module, batch_size: int, extra: Iterable = ()) -> str:
    """What the fastest layout depends on: CPU model and instruction set, torch version,
    threads, the model's configuration and the batch."""
    kwargs = getattr(model, "init_kwargs", {})
    cpu = cpu_info()
    parts = [cpu["model"], cpu["isa"], torch.__version__, cpu["torch_capability"],
             torch.get_num_threads(), type(model).__name__, sorted(kwargs.items()),
             batch_size, LAYOUT_REVISION, *extra]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "tribert" / "memory_format.json"


def remember(key: str, measure: Callable[[], tuple[dict[str, str], bool]],
             path: Optional[Path] = None) -> tuple[dict[str, str], bool]:
    """The cached choice for ``key``, or ``measure()``'s, stored for next time when it was
    steady (atomically; a cache that cannot be read or written is measured again, never an
    error). Returns the choice and whether it came from the cache."""
    path = path or cache_path()
    try:
        cached = json.loads(path.read_text())
        if not isinstance(cached, dict):
            cached = {}
    except (OSError, ValueError):
        cached = {}
    if isinstance(cached.get(key), dict):
        return dict(cached[key]), True
    choice, steady = measure()
    if not steady:
        return choice, False
    cached[key] = choice
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass
    return choice, False
