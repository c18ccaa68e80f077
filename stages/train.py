"""Stage ``train``: mix-and-separate pre-training of TriBERT on the clip shards (paper 3.2.1).

Reads ``data/clips`` (and the row-aligned pose features in ``data/pose``), trains the model of
the ``model`` section with the ``train`` section's settings, and writes

- ``models/tribert.pt``: the best model on the val SDR (a model package: constructor arguments
  and weights; never chosen on test), written when the run finishes (until then the best
  package travels in ``checkpoints/last.pt``; a finished run re-run is a no-op that rebuilds
  only missing outputs),
- ``checkpoints/last.pt``: the full training state, every epoch (and every
  ``train.checkpoint_every`` steps); the stage resumes from it after an interruption,
- ``dvclive/``: metrics and plots per epoch; ``results/train/*.png``: the curves, offline.

One process, or many under torchrun (see :mod:`model.solver` for the commands).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
import torch

from model import distrib
from model.checkpoint import set_aside_unreadable
from model.build import build_model
from model.solver import NonFiniteLoss, Paths, Solver
from model.task import SeparationTask
from pipeline import checks, shards
from pipeline.dataset import MixDataset, collate, pose_extra
from pipeline.params import ParamsError, load_params, params_hash, to_dict

VAL_BATCH = 4


def data_fingerprint(*dirs: Path) -> list:
    """Names and sizes of the shards that are read: a changed dataset restarts training."""
    return [[p.as_posix(), p.stat().st_size] for d in dirs if d for p in shards.list_shards(d)]


def check_paths(clips: Path, pose: Path | None, out, checkpoint, live, plots) -> None:
    """Before any work: the input shards open and read back, every output can be written, and
    an unreadable training state is set aside (:func:`model.checkpoint.set_aside_unreadable`);
    a problem is one line naming the file."""
    checks.clip_shards(clips)
    checks.pose_shards(pose)
    for path in (out, checkpoint):
        checks.output_path(path)
    for path in (live, plots):
        checks.output_path(path, folder=True)
    if int(os.environ.get("RANK", "0")) == 0:   # one rank renames; the others wait for it
        set_aside_unreadable(checkpoint, log=lambda m: click.echo(f"train: {m}", err=True))


def datasets(clips: Path, pose: Path | None, seed: int, dataset_cls=MixDataset):
    """The training mixtures (random pairs per epoch) and the val mixtures (fixed pairs)."""
    extra = pose_extra(pose)
    train = dataset_cls(clips, "train", seed=seed, extra=extra)
    val = dataset_cls(clips, "val", seed=seed, extra=extra)
    return train, val


def run(settings: dict, model, train_set, val_set, paths: Paths, fingerprint: str,
        max_steps: int | None, label_map=None, provenance_args: dict | None = None) -> int:
    """Train with the solver; returns a process exit code. ``provenance_args``: the
    arguments of :func:`pipeline.provenance.collect` for the record of a finished run."""
    world = distrib.init()
    try:
        task = SeparationTask(settings["loss"], val_set, settings["val_mixtures"],
                              settings["threshold"], VAL_BATCH, collate, label_map,
                              mask=settings["mask"])
        solver = Solver(task, model, train_set, settings, paths, world, fingerprint, collate)
        if world.is_master:
            click.echo(f"train: {len(train_set)} training and {len(val_set)} val mixtures; "
                       f"{solver.steps_per_epoch} steps per epoch of {settings['batch_size']} "
                       f"over {world.world_size} rank(s); lr {settings['lr']:g}")
        try:
            state = solver.run(max_steps)
        except NonFiniteLoss as e:
            click.echo(f"train: {e}", err=True)
            return 1
        finished = state.epoch >= settings["epochs"]
        if world.is_master and not finished:
            click.echo(f"train: stopped at step {state.global_step} (--max-steps); run again "
                       f"to resume from {paths.last}")
        if world.is_master and finished and provenance_args is not None:
            record_provenance(paths, state, str(world.device), provenance_args,
                              fresh=not solver.finished)
        if world.is_master and state.history:
            last = state.history[-1]
            click.echo("train: " + json.dumps({k: round(v, 4) for k, v in last.items()
                                               if isinstance(v, float)}))
        return 0
    finally:
        distrib.close()


def record_provenance(paths: Paths, state, device: str, args: dict, fresh: bool = True) -> dict:
    """What made the model (:mod:`pipeline.provenance`), with the val figures of the epoch it
    was chosen at: inside the package at ``paths.best``, as ``provenance.json`` beside the
    dvclive metrics, and in ``last.pt``. A run that trained (``fresh``) makes the record; a
    finished run run again reuses the one in ``last.pt`` and only restores the copies DVC
    removed, so no byte of an existing output changes."""
    from model.solver import _save
    from pipeline import provenance

    ck = torch.load(paths.last, map_location="cpu", weights_only=True)
    record = None if fresh else ck.get("provenance")
    if record is not None:
        pkg = torch.load(paths.best, map_location="cpu", weights_only=True)
        if "provenance" not in pkg:
            provenance.attach(paths.best, record)
        if not (paths.live / "provenance.json").exists():
            provenance.write(paths.live, record)
        return record

    best = next((r for r in state.history if r.get("epoch") == state.best_epoch), None)
    chosen = best or (state.history[-1] if state.history else {})
    val = {k.split("/", 1)[1]: v for k, v in chosen.items() if k.startswith("val/")}
    extra = {"val": {"epoch": chosen.get("epoch"), "chosen_on": "best val SDR" if best else
                     "last epoch (no finite val SDR)", **val},
             "epochs": state.epoch, "steps": state.global_step}
    record = provenance.collect(device=device, extra=extra, **args)
    provenance.attach(paths.best, record)
    provenance.write(paths.live, record)
    ck["provenance"] = record
    _save(ck, paths.last)
    return record


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
    try:
        p = load_params(params_path)
    except ParamsError as e:
        raise click.ClickException(str(e)) from None
    settings = p.train.resolved(p.model.preset)
    clips, pose = Path(clips), Path(pose) if pose else None
    check_paths(clips, pose, out, checkpoint, live, plots)
    train_set, val_set = datasets(clips, pose, settings["seed"])
    torch.manual_seed(settings["seed"])
    try:
        model = build_model(p.model)    # reads model.backbone_weights / vggish_weights, if set
    except ValueError as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    fingerprint = params_hash(to_dict(p.model), settings, data_fingerprint(clips, pose))
    paths = Paths(Path(checkpoint), Path(out), Path(live), Path(plots))
    record = dict(stage="train", params=p, inputs=[clips, pose], seed=settings["seed"],
                  started=started, resolved={"train": settings})
    sys.exit(run(settings, model, train_set, val_set, paths, fingerprint, max_steps,
                 provenance_args=record))


if __name__ == "__main__":
    main()
