"""One way to map per-video work: a local process pool (default) or Ray.

Every per-video stage (generation, download, decode, keypoints, pose features) calls
:func:`map_videos`. The function it maps must be a module-level function (picklable) that takes
one item and returns a small record; an exception inside it is caught here and turned into a
failure record for that item, so one bad video never stops the others.
"""
from __future__ import annotations

import os
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm


@dataclass(frozen=True)
class Failure:
    """What :func:`map_videos` yields for an item whose function raised."""

    item: Any
    error: str      # one line: "ExceptionType: message"
    detail: str     # the formatted traceback, for logs


def _call(fn, item):
    try:
        return fn(item)
    except Exception as e:  # noqa: BLE001 - isolate every item
        return Failure(item, f"{type(e).__name__}: {e}".splitlines()[0][:500], traceback.format_exc())


def _threads_per_worker(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def _init_worker(threads: int):
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass


_CONTEXT: Any = None      # map_ordered's shared context, in each worker process


def _init_ordered_worker(threads: int, context) -> None:
    global _CONTEXT
    _init_worker(threads)
    _CONTEXT = context


def _call_ordered(fn, item):
    return fn(_CONTEXT, item)


def map_ordered(fn: Callable, items: Iterable, jobs: int = 1, threads: int = 1,
                context: Any = None) -> list:
    """``[fn(context, item) for item in items]`` over ``jobs`` worker processes of ``threads``
    torch threads each, in the items' order: for the independent pieces of one stage's own
    work (the probe's and retrieval's many small trainings). ``context`` (the data every piece
    reads) reaches each worker once, the items one by one. Unlike :func:`map_videos`, an
    exception is raised here, not turned into a record: one failed piece leaves the stage's
    table incomplete. ``jobs=1`` (or one item) runs inline with ``threads`` threads. ``fn``
    must be a module-level function whose result depends only on its arguments (seeded per
    item), so that the output is the same for any ``jobs``."""
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        import torch

        torch.set_num_threads(threads)
        return [fn(context, item) for item in items]
    with ProcessPoolExecutor(max_workers=min(jobs, len(items)), initializer=_init_ordered_worker,
                             initargs=(threads, context)) as pool:
        return list(pool.map(partial(_call_ordered, fn), items))


def map_videos(fn: Callable, items: Iterable, *, backend: str = "local", jobs: int = 1,
               ray_address: str | None = None, desc: str = "", progress: bool = True) -> Iterator:
    """Yield ``fn(item)`` (or a :class:`Failure`) for every item, in completion order.

    ``backend="local"`` uses a process pool of ``jobs`` workers (``jobs=1`` runs inline, which
    keeps tracebacks and debuggers simple); ``backend="ray"`` submits one Ray task per item to
    the cluster at ``ray_address`` (a new local instance when None).
    """
    items = list(items)
    bar = tqdm(total=len(items), desc=desc, unit="video", disable=not progress or not items,
               dynamic_ncols=True)
    try:
        if backend == "local":
            yield from _map_local(fn, items, jobs, bar)
        elif backend == "ray":
            yield from _map_ray(fn, items, jobs, ray_address, bar)
        else:
            raise ValueError(f"executor.backend: unknown backend {backend!r} (local or ray)")
    finally:
        bar.close()


def _map_local(fn, items, jobs, bar):
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            out = _call(fn, item)
            bar.update()
            yield out
        return
    threads = _threads_per_worker(jobs)
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(_call, fn, item) for item in items]
        try:
            for fut in as_completed(futures):
                bar.update()
                yield fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _map_ray(fn, items, jobs, address, bar):
    try:
        import ray
    except ImportError as e:
        raise RuntimeError("executor.backend is 'ray' but Ray is not installed: "
                           "pip install 'ray[default]'") from e
    started = False
    if not ray.is_initialized():
        if address:  # a cluster: its nodes must have this project installed
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:  # a local instance: its workers import what this process can import
            env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env})
        started = True
    try:
        remote = ray.remote(_call)
        pending = {remote.remote(fn, item): item for item in items}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                item = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - a worker died
                    out = Failure(item, f"{type(e).__name__}: {e}".splitlines()[0][:500], "")
                bar.update()
                yield out
    finally:
        if started:
            ray.shutdown()
