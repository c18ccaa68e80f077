"""Stage ``train``: mix-and-separate pre-training of TriBERT on the clip shards (paper 3.2.1).

Reads ``data/clips`` (and the row-aligned pose features in ``data/pose``), trains the model of
the ``model`` section with the ``train`` section's settings, and writes

- ``models/tribert.pt``: the best model on the val SDR (a model package: constructor arguments
  and weights; never chosen on test), written when the run finishes (until then the best
  package travels in ``checkpoints/last.pt``; a finished run re-run is a no-op that rebuilds
  only missing outputs),
- ``checkpoints/last.pt``: the full training state, every epoch (and every
  ``train.checkpoint_every`` steps); the stage resumes from it after an interruption,
- ``checkpoints/frames_pretrain.pt``: with ``train.frames_pretrain`` > 0, the frames backbone
  after its instrument-classification pre-training (:mod:`pipeline.train.frames_pretrain`),
  reused by a resumed run,
- ``dvclive/``: metrics and plots per epoch; ``results/train/*.png``: the curves, offline.

One process, or many under torchrun (see :mod:`pipeline.train.solver` for the commands); the
code it shares with ``finetune`` is :mod:`pipeline.train.runner`.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
import torch

from model.build import build_model, frames_backbone
from pipeline.params import load_stage_params, params_hash, to_dict
from pipeline.train.frames_pretrain import pretrain_cached
from pipeline.pose.trajectory import check_trajectory
from pipeline.train.runner import check_paths, data_fingerprint, datasets, partner_settings, run
from pipeline.train.solver import Paths


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--clips", default="data/clips", show_default=True, type=click.Path())
@click.option("--pose", default="data/pose", show_default=True, type=click.Path())
@click.option("--out", default="models/tribert.pt", show_default=True, type=click.Path())
@click.option("--checkpoint", default="checkpoints/last.pt", show_default=True,
              type=click.Path())
@click.option("--live", default="dvclive", show_default=True, type=click.Path())
@click.option("--plots", default="results/train", show_default=True, type=click.Path())
@click.option("--max-steps", type=int, default=None,
              help="Stop after this many steps of this run (it resumes from there next time).")
def main(params_path, clips, pose, out, checkpoint, live, plots, max_steps):
    """Pre-train TriBERT by mix-and-separate; resume from --checkpoint if unfinished."""
    started = time.time()
    p = load_stage_params(params_path)
    settings = p.train.resolved(p.model.preset)
    clips, pose = Path(clips), Path(pose) if pose else None
    check_paths(clips, pose, out, checkpoint, live, plots)
    if pose is not None and p.model.arch == "tribert" and p.model.motion:
        # before the datasets, which read the trajectories
        try:
            check_trajectory(pose, p.model.motion_fps)
        except ValueError as e:
            raise click.ClickException(str(e).splitlines()[0]) from None
    train_set, val_set = datasets(clips, pose, settings["seed"],
                                  **partner_settings(settings))
    torch.manual_seed(settings["seed"])
    try:
        model = build_model(p.model)    # reads model.backbone_weights / vggish_weights, if set
    except ValueError as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    if settings["frames_pretrain"] and int(os.environ.get("RANK", "0")) == 0:
        # rank 0 only: DDP starts every rank from rank 0's weights
        resolved = p.model.resolved()
        # SoP's playing-area crops (model.sop_crop) pre-train on the same crops
        crop = resolved["sop_crop"] if resolved["arch"] == "sop" else None
        try:
            pretrain_cached(frames_backbone(model), clips, resolved["image_size"],
                            settings["frames_pretrain"], settings["seed"],
                            Path(checkpoint).with_name("frames_pretrain.pt"),
                            data_fingerprint(clips) if crop is None else
                            data_fingerprint(clips, pose),
                            log=lambda m: click.echo(f"train: {m}"), crop=crop, pose=pose)
        except ValueError as e:   # no training solo clips: one line naming the folder
            raise click.ClickException(str(e)) from None
    fingerprint = params_hash(to_dict(p.model), settings, data_fingerprint(clips, pose))
    paths = Paths(Path(checkpoint), Path(out), Path(live), Path(plots))
    record = dict(stage="train", params=p, inputs=[clips, pose], seed=settings["seed"],
                  started=started, resolved={"train": settings})
    sys.exit(run(settings, model, train_set, val_set, paths, fingerprint, max_steps,
                 provenance_args=record))


if __name__ == "__main__":
    main()
