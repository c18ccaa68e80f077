"""``tribert bench train``: training throughput on this machine, per model preset.

For each preset, a few real training steps (the solver's own loop: data from the clip shards
through the DataLoader, mixture features, forward, loss, backward, Adam) after a warm-up step;
printed: samples per second, seconds per step, and the share of step time spent waiting for the
next batch. The ``paper`` preset runs a couple of steps at a small batch (it is a GPU model).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
import torch

from model import distrib, layout
from model.build import build_model
from model.config import ModelParams
from model.solver import Paths, Solver
from model.task import SeparationTask
from model.train_params import TrainParams
from pipeline.bench import peak_rss_mb, report
from pipeline.dataset import collate
from pipeline.params import load_params
from stages.train import datasets


def bench_preset(preset: str, clips: Path, pose: Path | None, batch: int, steps: int,
                 workers: int, model_params: ModelParams | None = None,
                 memory_formats: tuple[str, ...] = ("auto",)) -> dict:
    """Figures of ``preset`` for each memory format (model.layout; ``keep``: the layouts the
    model is built with, i.e. before the measured choice), one after another in this run; the
    unprefixed figures are the last format's (``auto``: what ``train`` uses)."""
    settings = TrainParams().resolved(preset)
    settings.update(batch_size=batch, workers=workers, epochs=1, steps_per_epoch=0)
    train_set, _ = datasets(clips, pose, settings["seed"])
    task = SeparationTask(settings["loss"], None)
    world = distrib.World(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    out: dict = {f"{preset}.batch": batch}
    for fmt in memory_formats:
        torch.manual_seed(0)
        model = build_model(model_params or ModelParams(preset=preset))
        with tempfile.TemporaryDirectory() as tmp:
            paths = Paths(*(Path(tmp, n) for n in ("last.pt", "best.pt", "live", "plots")))
            solver = Solver(task, model, train_set, {**settings, "memory_format": fmt}, paths,
                            world, collate=collate, log=lambda m: None)
            figures = solver.measure(steps)
        out[f"{preset}.{fmt}.step_s"] = figures["step_s"]
        out[f"{preset}.{fmt}.memory_format"] = json.dumps(solver.memory_format)
        out.update({f"{preset}.{k}": v for k, v in figures.items()})
    if "keep" in memory_formats and "auto" in memory_formats:
        keep, auto = out[f"{preset}.keep.step_s"], out[f"{preset}.auto.step_s"]
        out[f"{preset}.keep_over_auto"] = keep / auto
    return out


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
@click.option("--memory-formats", default="keep,auto", show_default=True,
              help="Layouts to time in turn (model.layout): keep (as built), auto (measured "
              "per network and cached, as train uses), channels_last, contiguous.")
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              help="The model section of the preset it names is used (other presets: their "
              "defaults); '' = every preset's defaults.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_train(clips, pose, steps, batch, paper_steps, paper_batch, workers, presets,
                memory_formats, params_path, as_json):
    """Training throughput (samples/s) and data-wait share per preset, on real clip shards."""
    clips = Path(clips)
    if not any(clips.glob("shard-*.h5")):
        raise click.ClickException(f"{clips}: no clip shards; run `dvc repro decode` first")
    pose = Path(pose) if pose and any(Path(pose).glob("shard-*.h5")) else None
    figures = {"torch_threads": torch.get_num_threads(), "workers": workers,
               "pose": pose is not None}
    formats = tuple(f.strip() for f in memory_formats.split(",") if f.strip())
    unknown = set(formats) - {"keep", *layout.CHOICES}
    if unknown:
        raise click.BadParameter(f"unknown {sorted(unknown)}", param_hint="--memory-formats")
    own = load_params(params_path).model if params_path else None
    for preset in presets.split(","):
        n, b = (steps, batch) if preset == "tiny" else (paper_steps, paper_batch)
        mp = own if own is not None and own.preset == preset else None
        figures[f"{preset}.model"] = params_path if mp is not None else "preset defaults"
        figures.update(bench_preset(preset, clips, pose, b, n, workers, mp, formats))
    figures["peak_rss_mb"] = peak_rss_mb()
    report(figures, as_json, "tribert bench train (after one warm-up step)")
