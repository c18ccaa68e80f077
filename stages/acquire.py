"""Stage ``acquire``: the videos, their ID lists, the split and the manifest, in ``data/raw``.

Two sources end in one layout (README, "Data layout"):
- ``data.source: synthetic`` renders the embedded performer dataset offline (pipeline/synth);
- ``data.source: music21`` or ``music`` reads the MUSIC_dataset ID lists and downloads them from
  YouTube (pipeline/download).

The output is persistent across runs (``persist: true`` in dvc.yaml) so that an interrupted
run, repeated, resumes instead of starting over; the stage itself removes what the current
params no longer ask for, and starts afresh when the params that shape the videos change.
"""
from __future__ import annotations

import functools
import shutil
import sys
from pathlib import Path

import click

from pipeline import atomic, manifest
from pipeline.executor import Failure, map_videos
from pipeline.params import ParamsError, load_params, params_hash, to_dict

STATE = ".acquire-state.json"


def _fingerprint(data) -> str:
    """Hash of the params that shape the files (not the split: re-splitting re-renders nothing)."""
    shaping = {"source": data.source, "seed": data.seed}
    if data.source == "synthetic":
        shaping["synthetic"] = to_dict(data.synthetic)
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


def acquire_synthetic(p, out: Path, ex) -> list[manifest.Row]:
    from pipeline import splits, synth

    specs = synth.plan(p.data.synthetic, p.data.seed)
    _prune(out, {s.video_id for s in specs})
    split_of = splits.assign_splits(specs, p.data.split)
    for name, obj in synth.id_lists(specs).items():
        atomic.write_json(out / "lists" / name, obj)
    render = functools.partial(synth.render, root=out, params=p.data.synthetic)
    by_id = {s.video_id: s for s in specs}
    rows = []
    for res in map_videos(render, specs, backend=ex.backend, jobs=ex.jobs,
                          ray_address=ex.ray_address, desc="render"):
        if isinstance(res, Failure):
            spec = res.item
            rows.append(manifest.Row(spec.video_id, tuple(spec.classes), spec.kind, "synthetic",
                                     split_of[spec.video_id], "failed", res.error))
            click.echo(f"acquire: {spec.video_id}: {res.error}", err=True)
            continue
        spec = by_id[res["video_id"]]
        rows.append(manifest.Row(spec.video_id, tuple(spec.classes), spec.kind, "synthetic",
                                 split_of[spec.video_id], "ok", "", res["video"],
                                 res["annotations"], float(res["duration"])))
    return rows


def acquire_youtube(p, out: Path, ex) -> list[manifest.Row]:
    from pipeline import download, lists, splits

    d = p.data.download
    entries = lists.load_lists(p.data.source, d.lists, duets=d.duets,
                               limit_per_class=d.limit_per_class, timeout=d.timeout)
    _prune(out, {e.video_id for e in entries})
    for name, obj in lists.as_list_files(entries, p.data.source).items():
        atomic.write_json(out / "lists" / name, obj)
    split_of = splits.assign_splits(entries, p.data.split)
    rows = download.download_all(entries, out, d, backend=ex.backend, jobs=ex.jobs,
                                 ray_address=ex.ray_address)
    return [r.with_(split=split_of[r.video_id]) for r in rows]


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--out", default="data/raw", show_default=True, type=click.Path(file_okay=False))
def main(params_path: str, out: str) -> None:
    """Make data/raw: videos, ID lists, annotations (synthetic), split and manifest."""
    try:
        p = load_params(params_path)
    except ParamsError as e:
        raise click.ClickException(str(e)) from None
    out = Path(out)
    _prepare(out, _fingerprint(p.data))
    ex = p.executor
    if p.data.source == "synthetic":
        rows = acquire_synthetic(p, out, ex)
    else:
        from pipeline.download import Unreachable
        try:
            rows = acquire_youtube(p, out, ex)
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
