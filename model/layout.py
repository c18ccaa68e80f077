"""Memory format (NCHW or channels-last) of each convolutional network, chosen per CPU.

Which layout oneDNN runs fastest differs per network and per CPU: on this project's 2-core
AVX-512 Xeon the tiny preset's U-Net ran its training step in channels-last about 1.3x faster than
in NCHW, while on an AVX2 EPYC the paper U-Net was faster in NCHW and its ResNet-50 in
channels-last (issue 14; docs/experiments.md, "Memory format"). So no fixed default is right
everywhere: :func:`choose` times the real training step in each layout, one network at a time,
and keeps the faster; :func:`remember` caches the answer per CPU model, torch version, threads
and model configuration, so a machine measures once and every later run uses the same layout.

Every network with convolutions carries a ``memory_format`` attribute that its forward applies
to its input, and after its first convolution (a one-channel input is both layouts at once, so
that convolution alone cannot carry the layout on). :func:`apply` sets the attribute and the
weights together: the two must agree, or oneDNN converts on every call. The layout changes
speed, not the function (the kernels differ, so figures agree to float rounding, not bit for bit).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch
from torch import nn

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
NAMES = {v: k for k, v in FORMATS.items()}
CHOICES = ("auto", *FORMATS)


def networks(model: nn.Module) -> dict[str, nn.Module]:
    """The model's convolutional networks by module name: every submodule that carries a
    ``memory_format`` attribute (outermost first; nested ones are left to their owner)."""
    found: dict[str, nn.Module] = {}
    for name, m in model.named_modules():
        if hasattr(m, "memory_format") and not any(name.startswith(f + ".") for f in found):
            found[name] = m
    return found


def to_format(x: torch.Tensor, net: nn.Module) -> torch.Tensor:
    """``x`` in ``net``'s memory format (a no-op when it already is)."""
    return x.contiguous(memory_format=net.memory_format)


def same_format(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``x`` in the layout of ``ref`` (an einsum, for one, returns NCHW whatever its inputs)."""
    cl = ref.is_contiguous(memory_format=torch.channels_last) and not ref.is_contiguous()
    return x.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


def apply(model: nn.Module, choice: dict[str, str]) -> None:
    """Set each named network's layout: its input conversion and its convolution weights."""
    nets = networks(model)
    for name, fmt_name in choice.items():
        if name not in nets:
            raise KeyError(f"no convolutional network {name!r} (have {sorted(nets)})")
        fmt = FORMATS[fmt_name]
        net = nets[name]
        net.memory_format = fmt
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.data = m.weight.data.contiguous(memory_format=fmt)


def current(model: nn.Module) -> dict[str, str]:
    return {name: NAMES[net.memory_format] for name, net in networks(model).items()}


def uniform(model: nn.Module, fmt_name: str) -> dict[str, str]:
    return {name: fmt_name for name in networks(model)}


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


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), e.g. 'Intel(R) Xeon(R) Processor'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_key(model: nn.Module, batch_size: int, extra: Iterable = ()) -> str:
    """What the fastest layout depends on: CPU model and instruction set, torch version,
    threads, the model's configuration and the batch."""
    kwargs = getattr(model, "init_kwargs", {})
    parts = [cpu_model(), torch.__version__, torch.backends.cpu.get_cpu_capability(),
             torch.get_num_threads(), type(model).__name__, sorted(kwargs.items()),
             batch_size, *extra]
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
