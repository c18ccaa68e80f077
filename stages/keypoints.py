"""DVC stage ``keypoints``: Halpe-68 keypoints of up to two persons per frame for every usable
video of ``data/raw/manifest.csv`` -> ``data/keypoints/<id>.npz`` (+ status.csv, summary.json).

    python -m stages.keypoints --params params.yaml

Reads the ``keypoints`` section (backend: annotations | mediapipe | alphapose), ``decode.fps``
(keypoints are sampled at the clip frames' rate) and ``executor``. See pipeline/pose/keypoints.py.
"""
from __future__ import annotations

import click

from pipeline.data import checks
from pipeline.params import load_stage_params
from pipeline.pose import keypoints


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--manifest", default="data/raw/manifest.csv", show_default=True)
@click.option("--out", default="data/keypoints", show_default=True)
@click.option("--progress/--no-progress", default=True)
def main(params_path, manifest, out, progress):
    """Extract keypoints for every video."""
    params = load_stage_params(params_path)
    checks.input_file(manifest, "manifest", "run the acquire stage: dvc repro acquire")
    checks.output_path(out, folder=True)
    s = keypoints.run(manifest, out, params.keypoints, params.decode.fps, params.executor, progress)
    click.echo(f"keypoints ({s['backend']}): {s['ok']} of {s['videos']} videos, {s['frames']} frames, "
               f"{s['persons_per_frame']} persons per frame ({s['failed']} failed, see {out}/status.csv)")
    if not s["ok"]:
        raise click.ClickException(f"no video gave keypoints; see {out}/status.csv")


if __name__ == "__main__":  # pragma: no cover
    main()
