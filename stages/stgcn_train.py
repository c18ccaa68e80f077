"""DVC stage ``stgcn_train``: train ST-GCN on the train split's keypoints to classify the
instrument; writes ``models/stgcn.pt`` and ``results/stgcn/metrics.json`` (val accuracy).

    python -m stages.stgcn_train --params params.yaml

Reads the ``stgcn`` section. See pipeline/pose/stgcn_train.py.
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from pipeline.data import checks
from pipeline import provenance
from pipeline.params import load_stage_params
from pipeline.pose import stgcn_train


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--manifest", default="data/raw/manifest.csv", show_default=True)
@click.option("--keypoints", "keypoint_dir", default="data/keypoints", show_default=True)
@click.option("--model", "model_path", default="models/stgcn.pt", show_default=True)
@click.option("--metrics", "metrics_path", default="results/stgcn/metrics.json", show_default=True)
def main(params_path, manifest, keypoint_dir, model_path, metrics_path):
    """Train the pose classifier (ST-GCN)."""
    params = load_stage_params(params_path)
    checks.input_file(manifest, "manifest", "run the acquire stage: dvc repro acquire")
    checks.output_path(model_path)
    checks.output_path(metrics_path)
    started = time.time()
    stgcn_train.run(manifest, keypoint_dir, model_path, metrics_path, params.stgcn, log=click.echo)
    record = provenance.collect("stgcn_train", params, inputs=[manifest, keypoint_dir],
                                seed=params.stgcn.seed, started=started)
    provenance.attach(model_path, record)
    provenance.write(Path(metrics_path).parent, record)


if __name__ == "__main__":  # pragma: no cover
    main()
