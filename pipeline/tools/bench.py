"""``tribert bench {data,pose,model,train,eval,separate,scale}``: the one group of benchmarks.

Each bench is a click command in the package it measures (:data:`BENCHES`); all of them print
their figures through :func:`pipeline.benchmark.report`, so ``--json`` gives one JSON object of
the same shape for every bench. Speed and memory targets live here, never in timed tests."""
from __future__ import annotations

import click

from pipeline.cli import LazyGroup

BENCHES = {
    "data": "pipeline.data.bench:bench_data",
    "pose": "pipeline.pose.bench:bench_pose",
    "model": "pipeline.train.bench:bench_model",
    "train": "pipeline.train.bench:bench_train",
    "eval": "pipeline.tools.bench_eval:bench_eval",
    "separate": "pipeline.tools.bench_separate:bench_separate",
    "scale": "pipeline.tools.bench_scale:bench_scale",
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench():
    """Measure speed and memory; print figures (``--json``: one JSON object)."""
