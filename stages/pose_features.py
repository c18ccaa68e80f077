"""DVC stage ``pose_features``: ST-GCN features (2 x 256 x 68 per frame), person boxes and absent
flags for every clip frame -> ``data/pose/shard-NNNN.h5``, row-aligned with ``data/clips``.

    python -m stages.pose_features --params params.yaml

Reads the ``pose_features`` section. See pipeline/pose/features.py.
"""
from __future__ import annotations

import click

from pipeline.params import load_stage_params
from pipeline.data import checks
from pipeline.pose import features
from pipeline.pose.stgcn import load_checkpoint


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--clips", "clip_dir", default="data/clips", show_default=True)
@click.option("--keypoints", "keypoint_dir", default="data/keypoints", show_default=True)
@click.option("--model", "model_path", default="models/stgcn.pt", show_default=True)
@click.option("--out", default="data/pose", show_default=True)
def main(params_path, clip_dir, keypoint_dir, model_path, out):
    """Extract per-frame pose features into shards aligned with the clip shards."""
    params = load_stage_params(params_path)
    checks.output_path(out, folder=True)
    checks.clip_shards(clip_dir)
    try:
        load_checkpoint(model_path)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    s = features.run(clip_dir, keypoint_dir, model_path, out, params.pose_features, log=click.echo)
    click.echo(f"pose_features: {s['clips']} clips in {s['shards']} shards, "
               f"{s['present_person_frames']} person-frames present")


if __name__ == "__main__":  # pragma: no cover
    main()
