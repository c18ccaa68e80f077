"""What every ``tribert bench`` prints (:mod:`pipeline.tools.bench` registers the benches; each
lives in the package it measures): its figures, as aligned lines or one JSON object of one
shape, with the machine they were measured on."""
from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]


def music21_samples() -> Path:
    """The real MUSIC21 mixtures some benches read (``<shared>/data/music21_samples``; never
    needed: each bench says what it uses instead). ``<shared>`` is $TRIBERT_SHARED, else the
    first that exists of ``../shared`` beside the checkout (the development layout, as the tests
    read it) and ``shared/`` inside it (where the GPU machine's copy puts it); the first is
    returned when neither exists."""
    if os.environ.get("TRIBERT_SHARED"):
        return Path(os.environ["TRIBERT_SHARED"]) / "data" / "music21_samples"
    candidates = [REPO.parent / "shared", REPO / "shared"]
    shared = next((c for c in candidates if c.is_dir()), candidates[0])
    return shared / "data" / "music21_samples"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def report(bench: str, figures: dict, as_json: bool, title: str = "") -> None:
    """Print ``figures`` of bench ``bench`` as aligned lines, or as one JSON object on stdout
    with ``as_json``; either way with the machine they were measured on: the CPU model, its SIMD
    instruction sets and the kernel level torch uses (``cpu``, ``cpu_isa``,
    ``cpu_torch_kernels``, ``cpu_count``). The JSON of every bench has this one shape: a flat
    object ``{"bench": <name>, <figure>: <value>, ..., "cpu": ..., "cpu_isa": ...,
    "cpu_torch_kernels": ..., "cpu_count": ...}``."""
    from pipeline.provenance import cpu_info

    info = cpu_info()
    figures = {**figures, "cpu": info["model"], "cpu_isa": " ".join(info["isa"]) or "none",
               "cpu_torch_kernels": info["torch_capability"] or "unknown",
               "cpu_count": info["cores"]}
    if as_json:
        json.dump({"bench": bench, **figures}, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
        return
    if title:
        click.echo(title)
    width = max((len(k) for k in figures), default=0)
    for k, v in figures.items():
        click.echo(f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
