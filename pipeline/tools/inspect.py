"""``tribert inspect SHARD.h5 [...]``: summarise clip shards, check their integrity, render a clip;
``tribert inspect MODEL.pt``: a model card (:func:`model_card`).

The summary lists clips per class and split, durations, dataset shapes and dtypes and the file
attributes. The integrity check reads every row of every dataset and exits non-zero when a shard
is unreadable or truncated, fails a chunk's fletcher32 checksum (damaged bytes, also inside
compressed frames), lacks a dataset or attribute, has mismatched row counts or wrong
shapes/dtypes, or holds NaN, out-of-range or silent audio. ``--render INDEX --out FILE.png`` draws
the clip's frames and its log-frequency spectrogram; with ``--pose DIR`` (row-aligned pose
shards holding ``keypoints`` (N, F, P, 68, 3) in frame pixels) the keypoints are drawn on the
frames.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
import h5py
import numpy as np

from pipeline import atomic
from pipeline.data import checks, shards
from pipeline.classes import CLASSES
from pipeline.data.manifest import SPLITS

from pipeline.data.shard_check import (OTHER_ATTRS, REQUIRED_ATTRS, _first_line,  # noqa: F401
                                       check_shard, unchecked)


def summarise(paths) -> str:
    """A text summary of the shards: counts per class and split, durations, layout, attrs."""
    per_class, per_split, videos, n, seconds = Counter(), Counter(), set(), 0, 0.0
    layout, attrs = {}, {}
    for path in paths:
        with h5py.File(path, "r") as f:
            labels = f["label"][()]
            splits = [s.decode() or "none" for s in f["split"][()]]
            for r, c in zip(*np.nonzero(labels)):
                per_class[CLASSES[c], splits[r]] += 1
            per_split.update(splits)
            videos.update(v.decode() for v in f["video_id"][()])
            seconds += float((f["end"][()] - f["start"][()]).sum())
            n += labels.shape[0]
            for k, ds in f.items():
                layout[k] = (ds.shape[1:], ds.dtype, ds.compression)
            attrs = {k: f.attrs[k] for k in f.attrs if k not in ("classes", "shard_index",
                                                                  "n_clips")}
    lines = [f"{len(paths)} shard(s), {n} clips from {len(videos)} videos, "
             f"{seconds:.1f} s of clip audio ({seconds / max(n, 1):.2f} s per clip)",
             "clips per split: " + ", ".join(f"{k} {v}" for k, v in sorted(per_split.items())),
             "clips per class and split:",
             f"  {'class':<16}" + "".join(f"{k:>7}" for k in sorted(per_split))]
    lines += [f"  {c:<16}" + "".join(f"{per_class[c, k]:>7}" for k in sorted(per_split))
              for c in CLASSES if any(per_class[c, k] for k in per_split)]
    lines.append("datasets (per clip shape, dtype, compression):")
    lines += [f"  {k:<13} {str(s):<22} {str(d):<8} {c}" for k, (s, d, c) in layout.items()]
    lines.append("attributes:")
    lines += [f"  {k:<16} {v}" for k, v in sorted(attrs.items())]
    return "\n".join(lines)


def draw_keypoints(ax, keypoints: np.ndarray, min_score: float = 0.05) -> None:
    """Draw one frame's keypoints ``(P, 68, 3)`` (x, y, score in frame pixels) on ``ax``."""
    for person, colour in zip(keypoints, ("lime", "magenta", "cyan", "yellow")):
        seen = person[:, 2] > min_score
        ax.scatter(person[seen, 0], person[seen, 1], s=4, c=colour)


def render(path: str | Path, index: int, out: str | Path, pose_dir: str | Path | None = None):
    """Save a picture of clip ``index`` of shard ``path``: frames on top, spectrogram below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with h5py.File(path, "r") as f:
        if not 0 <= index < f["frames"].shape[0]:
            raise click.ClickException(f"{path}: index {index} outside 0..{f['frames'].shape[0] - 1}")
        frames, mag = f["frames"][index], f["mag"][index]
        vid, start = f["video_id"][index].decode(), float(f["start"][index])
        labels = [CLASSES[i] for i in np.nonzero(f["label"][index])[0]]
        fidx = f["frame_index"][index]
    keypoints = None
    if pose_dir is not None:
        with h5py.File(Path(pose_dir) / Path(path).name, "r") as g:
            keypoints = g["keypoints"][index]
    fig = plt.figure(figsize=(3 * len(frames), 6.2))
    for k, frame in enumerate(frames):
        ax = fig.add_subplot(2, len(frames), k + 1)
        ax.imshow(frame)
        if keypoints is not None:
            draw_keypoints(ax, keypoints[k])
        ax.set_title(f"frame {fidx[k]}", fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(2, 1, 2)
    ax.imshow(np.log(mag + 1e-10), origin="lower", aspect="auto", cmap="magma")
    ax.set_xlabel("STFT frame (hop 256)")
    ax.set_ylabel("log-frequency row")
    fig.suptitle(f"{vid} @ {start:.2f} s: {' + '.join(labels)}")
    with atomic.atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=80, format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# model card (issue 12, item 12)


def is_model_file(path: str | Path) -> bool:
    """A ``.pt``/``.pth`` file: a model package or training state, not a shard."""
    return Path(path).suffix in (".pt", ".pth")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _figures(d: dict, skip=("epoch", "chosen_on")) -> str:
    return ", ".join(f"{k} {_fmt(v)}" for k, v in d.items()
                     if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool))


def model_card(path: str | Path, test_metrics: str | Path | None = None) -> str:
    """What ``path`` holds and what made it: class, parameter count, the provenance record
    (:mod:`pipeline.provenance`) the stage stored in it, its val figures, and the test figures of
    ``test_metrics`` (results/evaluate/metrics.json) with whether they were measured on this
    very file (the evaluate stage's provenance.json holds the SHA-256 of the model it read)."""
    from model import checkpoint
    from pipeline import provenance

    path = Path(path)
    raw = checkpoint.read(path, "model package")   # ValueError naming the file
    state = raw if checkpoint.is_training_state(raw) else None
    pkg = raw["model"] if state else raw
    stgcn = isinstance(pkg, dict) and "config" in pkg and "class" not in pkg
    try:
        if stgcn:   # models/stgcn.pt (pipeline/pose/stgcn.py's checkpoint)
            from pipeline.pose.stgcn import load_checkpoint

            model = load_checkpoint(path)
        else:
            model = checkpoint.from_package(pkg)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        why = (str(e).splitlines() or [""])[0].replace(f"{path}: ", "")
        raise ValueError(f"{path}: not a model package of this project: {why}") from None
    if not hasattr(model, "init_kwargs"):
        model.init_kwargs = dict(pkg["config"])
    n = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    what = "training state holding a " if state else ""
    lines = [f"{path}: {what}{type(model).__name__} model package",
             f"  parameters   {n:,}" + ("" if trainable == n else f" ({trainable:,} trainable)"),
             "  arguments    " + ", ".join(f"{k}={v}" for k, v in sorted(model.init_kwargs.items()))]
    if stgcn:
        lines.append("  joints       " + ("body and hands (68)" if model.hands else
                                         "body only (26; stgcn.hands: false)"))
    rec = pkg.get("provenance") if isinstance(pkg, dict) else None
    if not isinstance(rec, dict):
        lines.append("  provenance   none recorded (not written by a stage of this version)")
    else:
        git = rec.get("git") or {}
        code = (f"git {git.get('commit', '?')[:12]}"
                + (f" with uncommitted changes ({', '.join(git.get('changed', [])[:5])})"
                   if git.get("dirty") else " (clean)")) if git else "not a git checkout"
        m = rec.get("machine", {})
        cpu = m.get("cpu", {})
        gpu = m.get("gpu", {})
        threads = m.get("threads", {})
        data = rec.get("data", {})
        inputs = "; ".join(f"{k} {v.get('files', 1)} file(s) {v.get('bytes', 0) / 1e6:.1f} MB "
                           f"sha256 {str(v.get('sha256', 'missing'))[:12]}"
                           for k, v in data.get("inputs", {}).items())
        libs = ", ".join(f"{k} {v}" for k, v in rec.get("libraries", {}).items() if v)
        params = rec.get("params", {})
        lines += [
            f"  made by      stage {rec.get('stage')} ({' '.join(rec.get('command', []))}), "
            f"started {rec.get('started')}, wall time {_fmt(rec.get('wall_s'))} s",
            f"  code         {code}",
            f"  data         sha256 {str(data.get('sha256', '?'))[:16]} ({inputs or 'no inputs'})",
            f"  params       sections {', '.join(params) or 'none'}; "
            + ", ".join(f"{s}: {_figures(params[s], ())}" for s in ("train", "finetune")
                        if isinstance(params.get(s), dict)),
            f"  libraries    {libs}",
            f"  machine      {provenance.cpu_line(cpu) if cpu else '?'}; device "
            f"{m.get('device', '?')}{' (' + gpu.get('name', '') + ')' if gpu else ''}; threads "
            f"torch {threads.get('torch')}, OMP_NUM_THREADS {threads.get('OMP_NUM_THREADS')}",
            f"  seed         {rec.get('seed')}",
        ]
    val = rec.get("val") if isinstance(rec, dict) else None
    if stgcn:
        figures = pkg.get("metrics") or {}
        lines.append(f"  val          {_figures(figures) or 'no figures recorded'}")
        return "\n".join(lines)
    if not val and state and state.get("history"):
        best = [r for r in state["history"] if r.get("epoch") == state.get("best_epoch")]
        chosen = (best or state["history"][-1:])[0]
        val = {"epoch": chosen.get("epoch"), **{k.split("/", 1)[1]: v for k, v in chosen.items()
                                                 if k.startswith("val/")}}
    lines.append(f"  val          epoch {val.get('epoch')}"
                 f"{' (' + val['chosen_on'] + ')' if val.get('chosen_on') else ''}: "
                 f"{_figures(val)}" if val else "  val          no figures recorded")
    lines += _test_lines(path, test_metrics)
    return "\n".join(lines)


def _test_lines(model_path: Path, metrics: str | Path | None) -> list[str]:
    import json

    from pipeline import provenance

    if metrics is None or not Path(metrics).is_file():
        return [f"  test         no figures ({metrics or 'no metrics file'} absent: "
                f"`dvc repro evaluate` writes them)"]
    metrics = Path(metrics)
    try:
        table = json.loads(metrics.read_text())
    except (OSError, ValueError) as e:
        return [f"  test         {metrics}: unreadable ({e})"]
    rec_path = metrics.parent / "provenance.json"
    whose = "not known which model file they were measured on (no provenance.json)"
    try:
        rec = json.loads(rec_path.read_text())
        entries = rec.get("data", {}).get("inputs", {})
        shas = {v.get("sha256") for v in entries.values()}
        whose = ("measured on this model file" if provenance.file_sha256(model_path) in shas
                 else "WARNING: measured on another model file (stale: run dvc repro)")
    except (OSError, ValueError):
        pass
    lines = [f"  test         {metrics} ({whose}):"]
    for name, figures in table.items():
        if isinstance(figures, dict):
            lines.append(f"    {name:<10} {_figures(figures)}")
    return lines


def _card_or_error(path: str, metrics) -> str:
    try:
        return model_card(path, metrics)
    except ValueError as e:
        raise click.ClickException(str(e).splitlines()[0]) from None


@click.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--render", "render_index", type=int, default=None, metavar="INDEX",
              help="render clip INDEX of the first shard")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="picture path (.png)")
@click.option("--pose", "pose_dir", type=click.Path(file_okay=False), default=None,
              help="row-aligned pose shard directory: draw its keypoints")
@click.option("--metrics", "test_metrics", type=click.Path(dir_okay=False),
              default="results/evaluate/metrics.json", show_default=True,
              help="test figures shown in a model card (a .pt path)")
def inspect_cmd(paths, render_index, out, pose_dir, test_metrics):
    """Summarise and check clip shards (exit 1 on a damaged shard); optionally render a clip.
    A model file (.pt) gets a model card: parameter count, what made it, val and test figures."""
    models = [p for p in paths if is_model_file(p)]
    for path in models:
        click.echo(_card_or_error(path, test_metrics))
    paths = [p for p in paths if not is_model_file(p)]
    if not paths:
        return
    sound, bad = [], []
    for path in paths:
        problems = check_shard(path)
        (bad if problems else sound).append(path)
        if problems:
            click.echo(f"{path}: DAMAGED", err=True)
            for p in problems:
                click.echo(f"  {p}", err=True)
    for path in sound:
        old = unchecked(path)
        if old:
            click.echo(f"{path}: no checksums on {', '.join(old)} (written before they were "
                       "added; re-run decode to add them)", err=True)
    if sound:
        click.echo(summarise(sound))
    if render_index is not None:
        if out is None:
            raise click.UsageError("--render needs --out FILE.png")
        checks.output_path(out)
        if paths[0] in bad:
            raise click.ClickException(f"{paths[0]}: not rendering from a damaged shard")
        render(paths[0], render_index, out, pose_dir)
        click.echo(f"wrote {out}")
    if bad:
        raise click.ClickException(f"{len(bad)} of {len(paths)} shard(s) failed the integrity "
                                   "check")
