"""``tribert bench train``: training throughput on this machine, per model preset.

For each preset, a few real training steps (the solver's own loop: data from the clip shards
through the DataLoader, mixture features, forward, loss, backward, Adam) after a warm-up step;
printed: samples per second, seconds per step, and the share of step time spent waiting for the
next batch. The ``paper`` preset runs a couple of steps at a small batch (it is a GPU model).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import click
import torch

from model import distrib
from model.build import build_model
from model.config import ModelParams
from model.solver import Paths, Solver
from model.task import SeparationTask
from model.train_params import TrainParams
from pipeline.bench import peak_rss_mb, report
from pipeline.dataset import collate
from stages.train import datasets


def bench_preset(preset: str, clips: Path, pose: Path | None, batch: int, steps: int,
                 workers: int) -> dict:
    settings = TrainParams().resolved(preset)
    settings.update(batch_size=batch, workers=workers, epochs=1, steps_per_epoch=0)
    train_set, _ = datasets(clips, pose, settings["seed"])
    torch.manual_seed(0)
    model = build_model(ModelParams(preset=preset))
    task = SeparationTask(settings["loss"], None)
    world = distrib.World(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(*(Path(tmp, n) for n in ("last.pt", "best.pt", "live", "plots")))
        solver = Solver(task, model, train_set, settings, paths, world, collate=collate,
                        log=lambda m: None)
        figures = solver.measure(steps)
    return {f"{preset}.{k}": v for k, v in {"batch": batch, **figures}.items()}


@click.command("train")
@click.option("--clips", default="data/clips", show_default=True, type=click.Path())
@click.option("--pose", default="data/pose", show_default=True,
              help="Pose shards ('' = none: the pose stream is erased).")
@click.option("--steps", default=4, show_default=True, help="Timed steps, tiny preset.")
@click.option("--batch", default=8, show_default=True, help="Batch, tiny preset.")
@click.option("--paper-steps", default=2, show_default=True)
@click.option("--paper-batch", default=2, show_default=True)
@click.option("--workers", default=0, show_default=True, help="DataLoader workers.")
@click.option("--presets", default="tiny,paper", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_train(clips, pose, steps, batch, paper_steps, paper_batch, workers, presets, as_json):
    """Training throughput (samples/s) and data-wait share per preset, on real clip shards."""
    clips = Path(clips)
    if not any(clips.glob("shard-*.h5")):
        raise click.ClickException(f"{clips}: no clip shards; run `dvc repro decode` first")
    pose = Path(pose) if pose and any(Path(pose).glob("shard-*.h5")) else None
    figures = {"torch_threads": torch.get_num_threads(), "workers": workers,
               "pose": pose is not None}
    for preset in presets.split(","):
        n, b = (steps, batch) if preset == "tiny" else (paper_steps, paper_batch)
        figures.update(bench_preset(preset, clips, pose, b, n, workers))
    figures["peak_rss_mb"] = peak_rss_mb()
    report(figures, as_json, "tribert bench train (after one warm-up step)")
