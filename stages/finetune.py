"""Stage ``finetune``: the pre-trained TriBERT fine-tuned on the 11 MUSIC classes (paper 3.2.2).

"We modify the classification layer from each pre-trained stream and then train our proposed
model end-to-end with a learning rate of 1e-7 for 1500 epochs while keeping the rest of the
hyper-parameters the same as the initial task." Here: the model is rebuilt with 11 classes, every
pre-trained weight whose shape does not depend on the class count is loaded (the class-dependent
layers - the visual tokenizer's class maps and the three classification heads - start afresh),
and it trains with the ``train`` settings except ``finetune.lr``/``epochs``/``seed``, on the
clips whose labels all lie in MUSIC11 (labels mapped to the MUSIC11 order).

Writes ``models/tribert_music11.pt`` (best on val SDR), ``checkpoints/finetune_last.pt``
(resume), ``dvclive_finetune/`` and ``results/finetune/*.png``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

from model.checkpoint import load as load_model, model_classes
from pipeline.classes import CLASS_INDEX, MUSIC11
from pipeline.data import checks
from pipeline.data.dataset import MixDataset
from pipeline.pose.trajectory import check_trajectory
from pipeline.params import load_stage_params, params_hash, to_dict
from pipeline.train.runner import check_paths, data_fingerprint, datasets, partner_settings, run
from pipeline.train.solver import Paths

MUSIC11_COLUMNS = [CLASS_INDEX[c] for c in MUSIC11]   # 21-class label column of each MUSIC class


class Music11MixDataset(MixDataset):
    """:class:`MixDataset` over the clips whose labels all lie in MUSIC11."""

    def _index(self, split):
        super()._index(split)
        outside = np.ones(self.label.shape[1], bool)
        outside[MUSIC11_COLUMNS] = False
        keep = ~(self.label[:, outside] > 0).any(axis=1)
        for name in ("shard", "row", "video_id", "label"):
            setattr(self, name, getattr(self, name)[keep])
        if not len(self.row):
            raise ValueError(f"{self.clip_dir}: no clips of split {split!r} within MUSIC11")


def with_classes(pretrained: torch.nn.Module, num_classes: int) -> torch.nn.Module:
    """A fresh model with the pre-trained one's constructor arguments but ``num_classes``."""
    kwargs = {**pretrained.init_kwargs, "num_classes": num_classes}
    return model_classes()[type(pretrained).__name__](**kwargs)


def transfer(pretrained: torch.nn.Module, model: torch.nn.Module) -> list[str]:
    """Copy every weight of ``pretrained`` whose name and shape ``model`` shares; returns the
    names left at their fresh initialisation (the replaced classification layers)."""
    source = pretrained.state_dict()
    target = model.state_dict()
    fresh = [k for k, v in target.items() if k not in source or source[k].shape != v.shape]
    model.load_state_dict({k: source[k] for k in target if k not in fresh}, strict=False)
    return fresh


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--pretrained", default="models/tribert.pt", show_default=True, type=click.Path())
@click.option("--clips", default="data/clips", show_default=True, type=click.Path())
@click.option("--pose", default="data/pose", show_default=True, type=click.Path())
@click.option("--out", default="models/tribert_music11.pt", show_default=True, type=click.Path())
@click.option("--checkpoint", default="checkpoints/finetune_last.pt", show_default=True,
              type=click.Path())
@click.option("--live", default="dvclive_finetune", show_default=True, type=click.Path())
@click.option("--plots", default="results/finetune", show_default=True, type=click.Path())
@click.option("--max-steps", type=int, default=None)
def main(params_path, pretrained, clips, pose, out, checkpoint, live, plots, max_steps):
    """Fine-tune the pre-trained model on the MUSIC11 subset with new classification layers."""
    started = time.time()
    p = load_stage_params(params_path)
    settings = p.finetune.resolved(p.train, p.model.preset)
    clips, pose = Path(clips), Path(pose) if pose else None
    checks.input_file(pretrained, "pre-trained model package", "run the train stage")
    check_paths(clips, pose, out, checkpoint, live, plots)
    try:
        base = load_model(pretrained)
        if pose is not None and getattr(base, "init_kwargs", {}).get("motion"):
            check_trajectory(pose, base.init_kwargs["motion_fps"])
    except ValueError as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    train_set, val_set = datasets(clips, pose, settings["seed"], Music11MixDataset,
                                  **partner_settings(settings))
    torch.manual_seed(settings["seed"])
    model = with_classes(base, len(MUSIC11))
    fresh = transfer(base, model)
    click.echo(f"finetune: {len(fresh)} tensors start afresh for {len(MUSIC11)} classes: "
               + ", ".join(sorted({k.rsplit('.', 2)[0] for k in fresh})))
    fingerprint = params_hash(to_dict(p.model), settings, data_fingerprint(clips, pose),
                              Path(pretrained).stat().st_size)
    paths = Paths(Path(checkpoint), Path(out), Path(live), Path(plots))
    record = dict(stage="finetune", params=p, inputs=[pretrained, clips, pose],
                  seed=settings["seed"], started=started, resolved={"finetune": settings})
    sys.exit(run(settings, model, train_set, val_set, paths, fingerprint, max_steps,
                 label_map=MUSIC11_COLUMNS, provenance_args=record))


if __name__ == "__main__":
    main()
