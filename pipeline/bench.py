"""``tribert bench {data,pose,model,train,eval,separate,scale}``: benchmarks that print their figures (and one
JSON object with ``--json``). Speed and memory targets live here, never in timed tests."""
from __future__ import annotations

import json
import resource
import sys

import click

from pipeline.cli import LazyGroup

BENCHES = {
    "data": "pipeline.bench_data:bench_data",
    "pose": "pipeline.pose.bench:bench_pose",
    "model": "model.bench:bench_model",
    "train": "model.bench_train:bench_train",
    "eval": "pipeline.bench_eval:bench_eval",
    "separate": "pipeline.bench_separate:bench_separate",
    "scale": "pipeline.bench_scale:bench_scale",
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench():
    """Measure speed and memory; print figures (``--json``: one JSON object)."""


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def report(figures: dict, as_json: bool, title: str = "") -> None:
    """Print ``figures`` as aligned lines, or as one JSON object on stdout with ``as_json``;
    either way with the machine they were measured on: the CPU model, its SIMD instruction
    sets and the kernel level torch uses (``cpu``, ``cpu_isa``, ``cpu_torch_kernels``)."""
    from pipeline.provenance import cpu_info

    info = cpu_info()
    figures = {**figures, "cpu": info["model"], "cpu_isa": " ".join(info["isa"]) or "none",
               "cpu_torch_kernels": info["torch_capability"] or "unknown",
               "cpu_count": info["cores"]}
    if as_json:
        json.dump(figures, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
        return
    if title:
        click.echo(title)
    width = max((len(k) for k in figures), default=0)
    for k, v in figures.items():
        click.echo(f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
