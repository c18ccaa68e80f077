"""What the ``train`` and ``finetune`` stages share: their input checks, datasets, the solver
run and the provenance record of a finished run (stages/train.py and stages/finetune.py are the
thin commands over this).

One process, or many under torchrun (see :mod:`pipeline.train.solver` for the commands).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click
import torch

from model.checkpoint import is_training_state, read
from pipeline.data import checks, shards
from pipeline.data.dataset import MixDataset, collate, pose_extra
from pipeline.train import distrib
from pipeline.train.solver import NonFiniteLoss, Paths, Solver
from pipeline.train.task import SeparationTask

VAL_BATCH = 4


def data_fingerprint(*dirs: Path) -> list:
    """Names and sizes of the shards that are read: a changed dataset restarts training."""
    return [[p.as_posix(), p.stat().st_size] for d in dirs if d for p in shards.list_shards(d)]


def check_paths(clips: Path, pose: Path | None, out, checkpoint, live, plots) -> None:
    """Before any work: the input shards open and read back, every output can be written, and
    an unreadable training state is set aside (:func:`set_aside_unreadable`);
    a problem is one line naming the file."""
    checks.clip_shards(clips)
    checks.pose_shards(pose)
    for path in (out, checkpoint):
        checks.output_path(path)
    for path in (live, plots):
        checks.output_path(path, folder=True)
    if int(os.environ.get("RANK", "0")) == 0:   # one rank renames; the others wait for it
        set_aside_unreadable(checkpoint, log=lambda m: click.echo(f"train: {m}", err=True))


def partner_settings(settings: dict) -> dict:
    """The train section's partner draws as :func:`datasets`' keyword arguments."""
    return {"similar": settings["similar_partners"], "similar_k": settings["similar_k"],
            "same_class": settings["same_class_partners"],
            "same_style": settings["same_style_partners"]}


def datasets(clips: Path, pose: Path | None, seed: int, dataset_cls=MixDataset,
             similar: float = 0.0, similar_k: int = 16, same_class: float = 0.0,
             same_style: float = 0.0):
    """The training mixtures (random pairs per epoch; ``similar``: the share whose partner is
    a spectrally similar clip, ``same_class``: of the same class, ``same_style``: of another
    class of the same composer style, :class:`MixDataset`) and the
    val mixtures (fixed pairs)."""
    extra = pose_extra(pose)
    train = dataset_cls(clips, "train", seed=seed, extra=extra, similar=similar,
                        similar_k=similar_k, same_class=same_class, same_style=same_style)
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
                              mask=settings["mask"], augment=settings["augment"],
                              signal_cap=settings["signal_cap"],
                              augment_trajectory=settings["augment_trajectory"])
        solver = Solver(task, model, train_set, settings, paths, world, fingerprint, collate)
        similar = getattr(train_set, "similar", 0.0)
        if world.is_master:
            click.echo(f"train: {len(train_set)} training and {len(val_set)} val mixtures; "
                       f"{solver.steps_per_epoch} steps per epoch of {settings['batch_size']} "
                       f"over {world.world_size} rank(s) on {world.device} (process group: "
                       f"{distrib.backend(world)}, DDP: {solver.ddp is not solver.model}); "
                       f"lr {settings['lr']:g}"
                       + (f"; {similar:.0%} of the partners among each clip's "
                          f"{train_set.neighbours.shape[1]} most similar" if similar else ""))
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
    from pipeline.train.solver import _save
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


def set_aside_unreadable(path: str | Path, log=print) -> Path | None:
    """A training state at ``path`` (``checkpoints/last.pt``) that cannot be read is renamed to
    ``<name>.unreadable`` (replacing an older one) and the run starts afresh, with a warning
    naming both files; returns the new name, or None when ``path`` is absent or readable.

    Why not refuse: the checkpoint is a DVC ``persist`` output, so a refusal would fail every
    later ``dvc repro`` until someone deletes the file by hand, while a training state is only
    ever recomputable work in progress (the stage writes it atomically, so an unreadable one
    comes from outside: a disk fault, a copy cut short, a file put there by hand). Renaming
    keeps the bytes for a look and never resumes from something that is not a training state.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = read(path, "training state")
        problem = "" if is_training_state(state) else "not a training state of this project"
    except ValueError as e:
        problem = str(e).replace(f"{path}: cannot read training state: ", "")
    if not problem:
        return None
    aside = path.with_name(path.name + ".unreadable")
    os.replace(path, aside)
    log(f"warning: {path}: {problem}; moved to {aside}, training starts afresh")
    return aside
