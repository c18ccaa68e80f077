"""``tribert bench data``: decode throughput, shard write speed, random-access read speed and
peak memory of the decode stage and the dataset; ``--compression`` also compares shard
compression settings on real clips (the MUSIC21 samples in ../shared when present).

Without ``--manifest`` it makes its own inputs: ``--videos`` mp4s of ``--seconds`` each from
ffmpeg's lavfi sources (640x360, 25 fps, H.264 + AAC, light noise so frames are not trivially
compressible), in a temporary directory.
"""
from __future__ import annotations

import resource
import subprocess
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from pipeline import cmdpath
from pipeline.data import decode, manifest, shards
from pipeline.benchmark import music21_samples, peak_rss_mb, report
from pipeline.classes import CLASSES
from pipeline.params import ExecutorParams, params_hash

SAMPLES = music21_samples()


def make_videos(directory: Path, n: int, seconds: float) -> Path:
    """``n`` lavfi mp4s and a manifest listing them; returns the manifest path."""
    rows = []
    for i in range(n):
        path = directory / "videos" / f"bench{i:06d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25,noise=alls=8:allf=t",
                        "-f", "lavfi", "-i", f"sine=frequency={220 + 40 * i}:sample_rate=44100",
                        "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", cmdpath.arg(path)], check=True)
        rows.append(manifest.Row(path.stem[:11], (CLASSES[i % len(CLASSES)],),
                                 split=("train", "val", "test")[i % 3],
                                 video=str(path.relative_to(directory)), duration=seconds))
    manifest.write(directory / "manifest.csv", rows)
    return directory / "manifest.csv"


def _dir_mb(d: Path) -> float:
    return sum(p.stat().st_size for p in shards.list_shards(d)) / 1e6


def read_speed(clip_dir: Path, workers: int, clips: int = 400) -> float:
    """Random-access clips/s through a DataLoader (frames, waveform, label per clip), timed from
    the first batch on (worker start-up excluded), over at least ``clips`` clips."""
    import torch
    from torch.utils.data import DataLoader

    from pipeline.data.dataset import ClipDataset, collate

    ds = ClipDataset(clip_dir)
    loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=workers, collate_fn=collate,
                        persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(0))
    n, t0 = 0, None
    while n < clips:
        for batch in loader:
            if t0 is None:
                t0 = time.perf_counter()
                continue
            n += len(batch["video_id"])
    return n / (time.perf_counter() - t0)


def stage_figures(manifest_path: Path, work: Path, p, jobs: int) -> dict:
    """Decode and assemble with separate timings; then read the shards back."""
    out = work / "clips"
    wdir = out / ".work" / params_hash(p)
    wdir.mkdir(parents=True)
    rows, records, jobs_ = decode.plan(manifest_path, wdir)
    t0 = time.perf_counter()
    records.update(decode.decode_all(jobs_, p, ExecutorParams(jobs=jobs), progress=False))
    t_decode = time.perf_counter() - t0
    ok = [(rows[v], records[v]["clips"]) for v in sorted(records)
          if records[v]["status"] == "ok"]
    t0 = time.perf_counter()
    names = decode.assemble(ok, wdir, out, p, params_hash(p))
    t_write = time.perf_counter() - t0
    seconds = sum(records[r.video_id]["duration"] for r, _ in ok)
    mb = _dir_mb(out)
    return {
        "videos": len(ok), "clips": sum(n for _, n in ok), "shards": len(names),
        "video_seconds": seconds, "decode_jobs": jobs,
        "decode_video_s_per_s": seconds / t_decode,
        "shard_mb": mb, "shard_write_mb_per_s": mb / t_write,
        "read_clips_per_s_workers0": read_speed(out, 0),
        "read_clips_per_s_workers2": read_speed(out, 2),
    }


def real_clips() -> list[dict]:
    """Clips made from the real MUSIC21 samples: each performer's frame (x3) and reference."""
    import soundfile

    clips = []
    for folder in sorted(SAMPLES.glob("*+*")):
        for k in (1, 2):
            frames, _ = decode.decode_frames(str(folder / f"video{k}.mp4"), decode.DecodeParams(),
                                             {0, 1, 2})
            wave, _ = soundfile.read(folder / f"gt{k}.wav", dtype="float32")
            wave = np.pad(wave, (0, 65535 - len(wave)))
            clips.append({"frames": np.stack([frames[i] for i in (0, 1, 2)]), "waveform": wave})
    return clips


def compression_figures(work: Path) -> dict:
    """Per-dataset size and random whole-clip read speed of each compression setting applied to
    frames, waveform and magnitude alike, on real clips (the stage then compresses what pays)."""
    import h5py
    import torch

    from pipeline.data.spectrogram import warped_magnitude

    clips = real_clips()
    arrays = {"frames": np.stack([c["frames"] for c in clips]),
              "waveform": np.stack([c["waveform"] for c in clips])}
    arrays["mag"] = warped_magnitude(torch.from_numpy(arrays["waveform"])).numpy()
    n = len(clips)
    out = {"compression_clips": n}
    for name, level in (("none", None), ("lzf", None), ("gzip", 1), ("gzip", 4), ("gzip", 9)):
        tag = name + (str(level) if level else "")
        path = work / f"cmp-{tag}.h5"
        with h5py.File(path, "w") as f:
            for k, a in arrays.items():
                f.create_dataset(k, data=a, chunks=(1,) + a.shape[1:], track_times=False,
                                 compression=None if name == "none" else name,
                                 compression_opts=level)
        order = np.random.default_rng(0).permutation(n)
        with h5py.File(path, "r") as f:
            for k in arrays:
                out[f"{tag}_{k}_kb_per_clip"] = f[k].id.get_storage_size() / n / 1e3
            t0 = time.perf_counter()
            for _ in range(5):
                for i in order:
                    for k in arrays:
                        f[k][i]
            out[f"{tag}_read_clips_per_s"] = 5 * n / (time.perf_counter() - t0)
    return out


@click.command("data")
@click.option("--manifest", "manifest_path", type=click.Path(dir_okay=False), default=None,
              help="decode these videos instead of generated ones")
@click.option("--videos", default=6, show_default=True, help="generated videos")
@click.option("--seconds", default=20.0, show_default=True, help="length of each generated video")
@click.option("--jobs", default=2, show_default=True, help="decode worker processes")
@click.option("--compression/--no-compression", "compare", default=False,
              help="also compare compression settings on the real MUSIC21 sample clips")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def bench_data(manifest_path, videos, seconds, jobs, compare, as_json):
    """Decode throughput, shard write MB/s, DataLoader read clips/s, peak memory."""
    import torch

    torch.set_num_threads(1)
    p = decode.DecodeParams()
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        work = Path(tmp)
        m = Path(manifest_path) if manifest_path else make_videos(work, videos, seconds)
        figures = stage_figures(m, work, p, jobs)
        if compare:
            if not SAMPLES.is_dir():
                raise click.ClickException(f"{SAMPLES} is absent: --compression needs it")
            figures.update(compression_figures(work))
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["peak_rss_mb_decode_workers"] = resource.getrusage(
        resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    report("data", figures, as_json, title="bench data")
