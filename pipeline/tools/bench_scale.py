"""``tribert bench scale``: does the pipeline's cost grow linearly with the number of videos, and
its peak memory stay flat? (issue 14 item 4)

The embedded dataset is rendered at ``--videos-per-class`` and at twice that (duets in the same
proportion, every other setting from ``params.yaml``), each in its own temporary folder, and the
per-video stages run on both through their own CLIs, exactly as ``dvc repro`` runs them:
acquire (render), decode, keypoints, stgcn_train, pose_features, train (``--epochs`` passes over
the clips) and embed. For every stage the bench prints the seconds and the peak resident memory
of its process at 1x and 2x, and the ratios: a stage whose cost is linear in the videos shows a
time ratio near 2 (near 1 for the fixed parts: imports, the model, ST-GCN's fixed epochs) and a
memory ratio near 1. ``evaluate`` and ``probe`` are left out: they score a fixed number of
mixtures / probes, so their cost does not depend on the number of videos.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import yaml

from pipeline.benchmark import report

STAGES = [
    ("acquire", ["--params", "{params}", "--out", "raw"]),
    ("decode", ["--params", "{params}", "--manifest", "raw/manifest.csv", "--out", "clips",
                "--no-progress"]),
    ("keypoints", ["--params", "{params}", "--manifest", "raw/manifest.csv",
                   "--out", "keypoints", "--no-progress"]),
    ("stgcn_train", ["--params", "{params}", "--manifest", "raw/manifest.csv",
                     "--keypoints", "keypoints", "--model", "stgcn.pt",
                     "--metrics", "stgcn_metrics.json"]),
    ("pose_features", ["--params", "{params}", "--clips", "clips", "--keypoints", "keypoints",
                       "--model", "stgcn.pt", "--out", "pose"]),
    ("train", ["--params", "{params}", "--clips", "clips", "--pose", "pose",
               "--out", "tribert.pt", "--checkpoint", "last.pt", "--live", "live",
               "--plots", "plots"]),
    ("embed", ["--params", "{params}", "--clips", "clips", "--pose", "pose",
               "--model", "tribert.pt", "--out", "embeddings", "--no-progress"]),
]


def scaled_params(base: dict, videos_per_class: int, duets_per_video: float,
                  epochs: int) -> dict:
    """``base`` (params.yaml as data) with the synthetic dataset's size and the training
    length set; every other setting as the user has it."""
    p = yaml.safe_load(yaml.safe_dump(base))
    synth = p["data"]["synthetic"]
    synth["videos_per_class"] = videos_per_class
    synth["duets"] = max(1, round(duets_per_video * videos_per_class))
    p["train"]["epochs"] = epochs
    p["train"]["steps_per_epoch"] = 0          # one pass over the clips per epoch
    p["data"]["source"] = "synthetic"
    return p


def run_stage(name: str, args: list[str], cwd: Path, env: dict) -> dict:
    """One stage as a child process: its wall seconds and peak resident MB (wait4's rusage of
    that child alone). A failing stage stops the bench with its last lines of output."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", f"stages.{name}", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code != 0:
        tail = " | ".join(out.strip().splitlines()[-3:])
        raise click.ClickException(f"bench scale: stage {name} failed ({code}) in {cwd}: {tail}")
    return {"s": seconds, "peak_mb": usage.ru_maxrss / 1024.0}


def count_clips(clips: Path) -> int:
    from pipeline.data import shards

    return sum(len(shards.read_index(p, fields=("split",))["split"])
               for p in shards.list_shards(clips))


def run_scale(base: dict, videos_per_class: int, duets_per_video: float, epochs: int,
              work: Path, stages: list[str], log=lambda m: None) -> dict:
    """Every stage at 1x and 2x the videos; figures keyed ``{stage}.{s,peak_mb}_{1x,2x}``,
    ``{stage}.time_ratio`` and ``{stage}.memory_ratio``, plus the clip and video counts."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    figures: dict = {}
    for scale in (1, 2):
        tag = f"{scale}x"
        cwd = work / tag
        cwd.mkdir(parents=True)
        params = scaled_params(base, videos_per_class * scale, duets_per_video, epochs)
        (cwd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for name, args in STAGES:
            if name not in stages:
                continue
            log(f"bench scale: {tag} {name}")
            got = run_stage(name, [a.format(params="params.yaml") for a in args], cwd, env)
            figures[f"{name}.s_{tag}"] = got["s"]
            figures[f"{name}.peak_mb_{tag}"] = got["peak_mb"]
        figures[f"videos_{tag}"] = sum(1 for _ in (cwd / "raw").rglob("*.mp4"))
        if (cwd / "clips").is_dir():
            figures[f"clips_{tag}"] = count_clips(cwd / "clips")
    for name, _ in STAGES:
        if f"{name}.s_1x" in figures:
            figures[f"{name}.time_ratio"] = figures[f"{name}.s_2x"] / figures[f"{name}.s_1x"]
            figures[f"{name}.memory_ratio"] = (figures[f"{name}.peak_mb_2x"]
                                               / figures[f"{name}.peak_mb_1x"])
    total = {tag: sum(v for k, v in figures.items() if k.endswith(f".s_{tag}"))
             for tag in ("1x", "2x")}
    figures.update({"total.s_1x": total["1x"], "total.s_2x": total["2x"],
                    "total.time_ratio": total["2x"] / total["1x"]})
    return figures


@click.command("scale")
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--videos-per-class", default=None, type=click.IntRange(1),
              help="Solo videos per class at 1x (2x renders twice as many); default: the "
              "params' (1x is the embedded dataset).")
@click.option("--epochs", default=1, show_default=True, type=click.IntRange(1),
              help="Training passes over the clips.")
@click.option("--stages", default=",".join(n for n, _ in STAGES), show_default=True,
              help="Stages to time, in pipeline order (each needs the ones before it).")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Work in this folder and keep it (default: a temporary folder).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_scale(params_path, videos_per_class, epochs, stages, keep, as_json):
    """Seconds and peak memory per stage at 1x and 2x the embedded videos, and their ratios."""
    base = yaml.safe_load(Path(params_path).read_text())
    synth = base["data"]["synthetic"]
    duets_per_video = synth["duets"] / synth["videos_per_class"]
    videos_per_class = videos_per_class or synth["videos_per_class"]
    chosen = [s.strip() for s in stages.split(",") if s.strip()]
    unknown = set(chosen) - {n for n, _ in STAGES}
    if unknown:
        raise click.BadParameter(f"unknown {sorted(unknown)}", param_hint="--stages")
    log = (lambda m: click.echo(m, err=True))
    if keep:
        work = Path(keep)
        if work.exists() and any(work.iterdir()):
            raise click.ClickException(f"{work}: not empty")
        figures = run_scale(base, videos_per_class, duets_per_video, epochs, work, chosen, log)
    else:
        with tempfile.TemporaryDirectory(prefix="tribert-scale-") as tmp:
            figures = run_scale(base, videos_per_class, duets_per_video, epochs, Path(tmp),
                                chosen, log)
    figures.update({"videos_per_class_1x": videos_per_class, "epochs": epochs})
    report("scale", figures, as_json, "tribert bench scale (1x and 2x the embedded videos)")
