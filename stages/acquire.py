"""Stage ``acquire``: the videos, their ID lists, the split and the manifest, in ``data/raw``.

Two sources end in one layout (README, "Data layout"):
- ``data.source: synthetic`` renders the embedded performer dataset offline (pipeline/data/synth);
- ``data.source: music21`` or ``music`` reads the MUSIC_dataset ID lists and downloads them from
  YouTube (pipeline/data/download).

The output is persistent across runs (``persist: true`` in dvc.yaml) so that an interrupted
run, repeated, resumes instead of starting over; the stage itself removes what the current
params no longer ask for, and starts afresh when the params that shape the videos change.
Every input (params, ID lists, split lists, the IDs themselves, YouTube's reachability) is read
and validated before anything under ``data/raw`` is removed. ``TRIBERT_KILL_AT_VIDEO=N`` (tests)
SIGKILLs the stage after its N-th finished video.
"""
from __future__ import annotations

import functools
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from pipeline import atomic
from pipeline.data import manifest
from pipeline.executor import Failure, map_videos
from pipeline.faults import kill_point
from pipeline.params import load_stage_params, params_hash, to_dict

STATE = ".acquire-state.json"


def _fingerprint(data) -> str:
    """Hash of the params that shape the files (not the split: re-splitting re-renders nothing)."""
    shaping = {"source": data.source, "seed": data.seed}
    if data.source == "synthetic":
        shaping["synthetic"] = to_dict(data.synthetic)
        if data.synthetic.styles == "fixed":
            # the default renders the bytes it rendered before the key existed: keep the data
            # (and every stage after it) of an older checkout
            del shaping["synthetic"]["styles"]
    else:
        shaping["max_height"] = data.download.max_height
    return params_hash(shaping)


def _prepare(out: Path, fingerprint: str) -> None:
    """Keep finished files of an interrupted run with the same fingerprint; else start afresh."""
    state = out / STATE
    if out.exists():
        old = state.read_text().strip() if state.exists() else None
        if old != fingerprint:
            click.echo(f"acquire: params changed since {out} was made; starting afresh")
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("", "videos", "annotations", "stems", "lists"):
        atomic.clean_temporaries(out / sub)
    atomic.write_text(state, fingerprint + "\n")


def _prune(out: Path, keep_ids: set[str]) -> None:
    """Remove files of videos the current plan no longer holds (e.g. fewer videos per class)."""
    for sub in ("videos", "annotations", "stems"):
        d = out / sub
        if not d.is_dir():
            continue
        for f in d.iterdir():
            # <id>.mp4, <id>.json, stems <id>-<k>.wav; IDs have any length (not YouTube's 11)
            vid = f.stem.rsplit("-", 1)[0] if sub == "stems" else f.stem
            if vid not in keep_ids and not f.name.startswith(atomic.TMP_MARK):
                f.unlink()


@dataclass
class Plan:
    """Everything acquire will do, computed and validated before anything on disk changes."""

    ids: set[str]                 # the videos the params ask for
    list_files: dict[str, dict]   # lists/<name> -> content
    split_of: dict[str, str]      # video ID -> split
    items: list                   # synthetic specs or list entries


def plan_synthetic(p) -> Plan:
    from pipeline.data import splits, synth

    specs = synth.plan(p.data.synthetic, p.data.seed)
    return Plan({s.video_id for s in specs}, synth.id_lists(specs),
                splits.assign_splits(specs, p.data.split), specs)


def plan_youtube(p) -> Plan:
    """Read and validate the ID lists (and the official split lists), check the IDs and that
    YouTube can be reached: all of it fails before data/raw is touched."""
    from pipeline.data import download, lists, splits

    d = p.data.download
    entries = lists.load_lists(p.data.source, d.lists, duets=d.duets,
                               limit_per_class=d.limit_per_class, timeout=d.timeout)
    download.check_entries(entries)
    split_of = splits.assign_splits(entries, p.data.split)
    download.check_reachable(*download.YOUTUBE, timeout=d.timeout)
    return Plan({e.video_id for e in entries}, lists.as_list_files(entries, p.data.source),
                split_of, entries)


def acquire_synthetic(p, plan: Plan, out: Path, ex) -> list[manifest.Row]:
    from pipeline.data import synth

    render = functools.partial(synth.render, root=out, params=p.data.synthetic)
    by_id = {s.video_id: s for s in plan.items}
    split_of = plan.split_of
    rows = []
    for n, res in enumerate(map_videos(render, plan.items, backend=ex.backend, jobs=ex.jobs,
                                       ray_address=ex.ray_address, desc="render"), start=1):
        if isinstance(res, Failure):
            spec = res.item
            rows.append(manifest.Row(spec.video_id, tuple(spec.classes), spec.kind, "synthetic",
                                     split_of[spec.video_id], "failed", res.error))
            click.echo(f"acquire: {spec.video_id}: {res.error}", err=True)
        else:
            spec = by_id[res["video_id"]]
            rows.append(manifest.Row(spec.video_id, tuple(spec.classes), spec.kind, "synthetic",
                                     split_of[spec.video_id], "ok", "", res["video"],
                                     res["annotations"], float(res["duration"])))
        kill_point("VIDEO", n)
    return rows


def acquire_youtube(p, plan: Plan, out: Path, ex) -> list[manifest.Row]:
    from pipeline.data import download

    rows = download.download_all(plan.items, out, p.data.download, backend=ex.backend,
                                 jobs=ex.jobs, ray_address=ex.ray_address)
    return [r.with_(split=plan.split_of[r.video_id]) for r in rows]


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--out", default="data/raw", show_default=True, type=click.Path(file_okay=False))
def main(params_path: str, out: str) -> None:
    """Make data/raw: videos, ID lists, annotations (synthetic), split and manifest."""
    p = load_stage_params(params_path)
    out = Path(out)
    # validate every input first (params above, ID lists and splits here); delete last
    from pipeline.data.download import Unreachable
    try:
        plan = plan_synthetic(p) if p.data.source == "synthetic" else plan_youtube(p)
    except (Unreachable, ValueError, OSError) as e:
        raise click.ClickException(f"acquire: {e}; nothing under {out} was changed") from None
    _prepare(out, _fingerprint(p.data))
    _prune(out, plan.ids)
    for name, obj in plan.list_files.items():
        atomic.write_json(out / "lists" / name, obj)
    ex = p.executor
    if p.data.source == "synthetic":
        rows = acquire_synthetic(p, plan, out, ex)
    else:
        try:
            rows = acquire_youtube(p, plan, out, ex)
        except Unreachable as e:
            raise click.ClickException(f"acquire: {e}") from None
    manifest.write(out / "manifest.csv", rows)
    counts = {s: sum(r.status == s for r in rows) for s in manifest.STATUSES}
    click.echo(f"acquire: {len(rows)} videos: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if rows and counts["ok"] == 0:
        click.echo("acquire: no video is usable; later stages will have nothing to read", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
