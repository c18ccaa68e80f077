"""Decode one video into clip windows: frames at 8 fps, 224 x 224, and mono audio at 11025 Hz
(paper Sec. 4.1; REFERENCE.md "Data" and "Audio front end").

A video is probed first (ffprobe via ffmpeg-python) and skipped, with a reason, when it has no
video stream, no audio track, is shorter than one clip, has an unreadable container, a variable
frame rate (``vfr: skip``, the default) or frames smaller than ``min_side``. Odd widths and
heights are decoded normally (frames leave ffmpeg as rgb24, which has no parity constraint).

Windows: clip ``k`` covers samples ``[s_k, s_k + 65535)`` with ``s_k = round(k * stride * sr)``;
its frames are ``frames_per_clip`` frames ``frame_stride`` apart centred on the frame nearest
the window centre (8 fps frame ``i`` shows time ``i / 8`` s from the stream start). Windows whose
frames run past the decoded video, or whose audio is silent (RMS < ``min_rms``), are dropped.
Frames are read from ffmpeg's pipe one at a time and only the needed ones are kept, so memory
per video is bounded by its windows, not its length.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

import ffmpeg
import numpy as np

from pipeline import atomic, cmdpath
from pipeline.data import manifest
from pipeline.classes import multi_hot
from pipeline.executor import Failure, map_videos
from pipeline.faults import kill_point
from pipeline.params import ExecutorParams, params_hash
from pipeline.schema import CLIP_SAMPLES, SAMPLE_RATE, DecodeParams  # noqa: F401 (re-exported)

# The decode section (and the audio constants it fixes, repeated from pipeline.data.spectrogram so that
# validating params.yaml does not import torch) live in pipeline.schema, re-exported here. The
# torch-backed modules (spectrogram, shards) are imported inside the functions that use them.


class NothingDecoded(RuntimeError):
    """No video of the manifest gave a clip; the output directory was not touched."""


class Skip(Exception):
    """A video that cannot be used; the message is the reason recorded in status.csv, in the
    form "kind: detail" (summary.json counts the kinds)."""


@dataclass
class Probe:
    width: int
    height: int
    duration: float       # seconds, the shorter of the video and audio streams when known
    src_fps: float
    vfr: bool


@dataclass
class Decoded:
    """Clip windows of one video, row-aligned arrays (W = windows, F = frames per clip)."""

    frames: np.ndarray        # (W, F, size, size, 3) uint8
    waveform: np.ndarray      # (W, clip_samples) float32 in [-1, 1]
    start_sample: np.ndarray  # (W,) int64
    frame_index: np.ndarray   # (W, F) int32, at ``fps``
    window: np.ndarray        # (W,) int32, window number k within the video
    probe: Probe
    dropped_silent: int = 0


# --------------------------------------------------------------------------------------------
# probing


def _rate(text: str) -> float:
    try:
        r = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(r)


def _stream_duration(s: dict, fmt: dict) -> float:
    for v in (s.get("duration"), fmt.get("duration")):
        try:
            if v is not None and float(v) > 0:
                return float(v)
        except ValueError:
            pass
    return 0.0


def probe(path: str, p: DecodeParams) -> Probe:
    """Probe ``path``; raise :class:`Skip` with the reason when the video cannot be used."""
    try:
        info = ffmpeg.probe(cmdpath.arg(path))
    except ffmpeg.Error as e:
        last = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise Skip(f"unreadable container: {last[-1] if last else 'ffprobe failed'}") from None
    streams, fmt = info.get("streams", []), info.get("format", {})
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not video:
        raise Skip("no video stream")
    if not audio:
        raise Skip("no audio track")
    v, a = video[0], audio[0]
    width, height = int(v.get("width") or 0), int(v.get("height") or 0)
    if min(width, height) < p.min_side:
        raise Skip(f"frames too small: {width}x{height} < {p.min_side} px")
    duration = min(_stream_duration(v, fmt), _stream_duration(a, fmt))
    if duration < p.clip_seconds:
        raise Skip(f"too short: {duration:.2f} s < one clip ({p.clip_seconds:.2f} s)")
    r, avg = _rate(v.get("r_frame_rate", "0/0")), _rate(v.get("avg_frame_rate", "0/0"))
    vfr = r > 0 and avg > 0 and abs(r - avg) / r > p.vfr_tolerance
    if vfr and p.vfr == "skip":
        raise Skip(f"variable frame rate: r_frame_rate {r:.3f}, avg_frame_rate {avg:.3f}")
    return Probe(width, height, duration, avg or r, vfr)


# --------------------------------------------------------------------------------------------
# ffmpeg runs


def _run(stream, what: str, path: str) -> bytes:
    """Run an ffmpeg-python stream writing to stdout; return its bytes or raise Skip."""
    args = stream.global_args("-nostdin", "-loglevel", "error").compile()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=err, check=False)
        if proc.returncode != 0:
            err.seek(0)
            last = err.read().decode(errors="replace").strip().splitlines()
            raise Skip(f"{what} decode failed: {last[-1] if last else f'ffmpeg exit {proc.returncode}'}")
    return proc.stdout


def decode_audio(path: str, p: DecodeParams) -> np.ndarray:
    """The whole audio track as mono float32 at ``sample_rate``, clipped to [-1, 1]."""
    stream = ffmpeg.input(cmdpath.arg(path)).output("pipe:", format="f32le", acodec="pcm_f32le",
                                                    ac=1, ar=p.sample_rate, vn=None)
    out = _run(stream, "audio", path)
    wave = np.frombuffer(out, dtype="<f4").astype(np.float32)
    if not np.isfinite(wave).all():
        raise Skip("audio contains NaN or infinite samples")
    return np.clip(wave, -1.0, 1.0)


def video_filter(p: DecodeParams) -> str:
    """The ffmpeg filter chain: fps resampling, then resize per ``resize``."""
    s = p.size
    flags = f"flags={p.scale_flags}"
    if p.resize == "center_crop":
        resize = f"scale={s}:{s}:force_original_aspect_ratio=increase:{flags},crop={s}:{s}"
    elif p.resize == "pad":
        resize = (f"scale={s}:{s}:force_original_aspect_ratio=decrease:{flags},"
                  f"pad={s}:{s}:(ow-iw)/2:(oh-ih)/2:color=black")
    else:
        resize = f"scale={s}:{s}:{flags}"
    return f"fps={p.fps},{resize},setsar=1"


def decode_frames(path: str, p: DecodeParams, wanted: set[int]) -> tuple[dict[int, np.ndarray], int]:
    """Frames at ``fps`` whose index is in ``wanted`` (streamed; others are discarded), and the
    number of frames ffmpeg produced."""
    args = (ffmpeg.input(cmdpath.arg(path))
            .output("pipe:", format="rawvideo", pix_fmt="rgb24", vf=video_filter(p), an=None)
            .global_args("-nostdin", "-loglevel", "error").compile())
    frame_bytes = p.size * p.size * 3
    kept: dict[int, np.ndarray] = {}
    n = 0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
        try:
            while True:
                buf = proc.stdout.read(frame_bytes)
                if len(buf) < frame_bytes:
                    break
                if n in wanted:
                    kept[n] = np.frombuffer(buf, np.uint8).reshape(p.size, p.size, 3)
                n += 1
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            err.seek(0)
            last = err.read().decode(errors="replace").strip().splitlines()
            raise Skip(f"video decode failed: {last[-1] if last else f'ffmpeg exit {code}'}")
    return kept, n


# --------------------------------------------------------------------------------------------
# windows


def plan_windows(n_samples: int, duration: float, p: DecodeParams):
    """Window starts (samples) and frame indices ``(W, F)`` for a video of ``n_samples`` audio
    samples and ``duration`` seconds of video."""
    stride = int(round(p.window_stride * p.sample_rate))
    half = ((p.frames_per_clip - 1) * p.frame_stride) // 2
    offsets = np.arange(p.frames_per_clip) * p.frame_stride - half
    last_frame = int(np.floor(duration * p.fps + 1e-6)) - 1
    starts, frames = [], []
    s = 0
    while s + p.clip_samples <= n_samples:
        centre = (s + p.clip_samples / 2) / p.sample_rate
        idx = int(round(centre * p.fps)) + offsets
        if idx[0] >= 0 and idx[-1] <= last_frame:
            starts.append(s)
            frames.append(idx)
        if p.max_windows and len(starts) >= p.max_windows:
            break
        s += stride
    return (np.asarray(starts, dtype=np.int64),
            np.asarray(frames, dtype=np.int32).reshape(len(starts), p.frames_per_clip))


def decode_video(path: str, p: DecodeParams) -> Decoded:
    """Decode one video into its clip windows; raise :class:`Skip` when nothing usable."""
    info = probe(path, p)
    wave = decode_audio(path, p)
    if len(wave) < p.clip_samples:
        raise Skip(f"too short: {len(wave)} audio samples decoded < {p.clip_samples}")
    starts, fidx = plan_windows(len(wave), info.duration, p)
    windows = np.arange(len(starts), dtype=np.int32)
    if len(starts):
        rms = np.array([np.sqrt(np.mean(wave[s:s + p.clip_samples] ** 2)) for s in starts])
        loud = rms >= p.min_rms
        dropped = int((~loud).sum())
        starts, fidx, windows = starts[loud], fidx[loud], windows[loud]
    else:
        dropped = 0
    if not len(starts):
        raise Skip("silent audio" if dropped else "no complete window: video and audio too short")
    kept, n_frames = decode_frames(path, p, set(fidx.ravel().tolist()))
    have = np.array([all(int(i) in kept for i in row) for row in fidx], dtype=bool)
    starts, fidx, windows = starts[have], fidx[have], windows[have]
    if not len(starts):
        raise Skip(f"no complete window: {n_frames} frames decoded at {p.fps} fps")
    frames = np.stack([np.stack([kept[int(i)] for i in row]) for row in fidx])
    waveform = np.stack([wave[s:s + p.clip_samples] for s in starts]).astype(np.float32)
    assert frames.shape == (len(starts), p.frames_per_clip, p.size, p.size, 3), frames.shape
    assert waveform.shape == (len(starts), p.clip_samples), waveform.shape
    return Decoded(frames, waveform, starts, fidx, windows, info, dropped)


# --------------------------------------------------------------------------------------------
# the stage: per-video work items cached atomically, then deterministic shard assembly
#
# Resumability: each video's result (an .npz of its windows, then a .json record naming the
# source file's size and mtime) is written atomically to ``<out>/.work/<params hash>/``; the
# .json marks the item complete. A killed run leaves only complete items (and temporaries that
# are cleaned); the next run decodes only what is missing, then assembles every shard from the
# items in video-ID order, so the result equals an uninterrupted run byte for byte. The work dir
# is removed once the shards, status.csv and summary.json are in place.

STATUS_COLUMNS = ["video_id", "split", "kind", "status", "reason", "clips", "silent_windows",
                  "duration", "width", "height", "src_fps", "vfr"]


@dataclass(frozen=True)
class Job:
    """One video to decode (picklable: it crosses process and Ray boundaries)."""

    video_id: str
    path: str
    work_dir: str


def _item_paths(work_dir, video_id):
    base = Path(work_dir) / video_id
    return base.with_suffix(".npz"), base.with_suffix(".json")


def _source_key(path: str) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _magnitudes(waveform: np.ndarray, batch: int = 8) -> np.ndarray:
    import torch

    from pipeline.data.spectrogram import warped_magnitude

    with torch.no_grad():
        out = [warped_magnitude(torch.from_numpy(waveform[i:i + batch])).numpy()
               for i in range(0, len(waveform), batch)]
    return np.concatenate(out).astype(np.float32)


def decode_item(job: Job, p: DecodeParams) -> dict:
    """Decode one video into its work item (reused when already complete); return its record."""
    npz, rec_path = _item_paths(job.work_dir, job.video_id)
    try:
        key = _source_key(job.path)
    except OSError as e:
        return {"video_id": job.video_id, "status": "skipped",
                "reason": f"missing video file: {job.path}: {e.strerror}"}
    if rec_path.exists():
        rec = json.loads(rec_path.read_text())
        if rec.get("source") == key and (rec["status"] != "ok" or npz.exists()):
            return rec
    rec = {"video_id": job.video_id, "source": key}
    try:
        d = decode_video(job.path, p)
    except Skip as e:
        rec.update(status="skipped", reason=str(e))
    else:
        with atomic.atomic_path(npz) as tmp:
            np.savez(tmp, frames=d.frames, waveform=d.waveform, mag=_magnitudes(d.waveform),
                     start_sample=d.start_sample, frame_index=d.frame_index, window=d.window)
        rec.update(status="ok", reason="", clips=len(d.waveform), silent_windows=d.dropped_silent,
                   duration=round(d.probe.duration, 3), width=d.probe.width,
                   height=d.probe.height, src_fps=round(d.probe.src_fps, 3), vfr=d.probe.vfr)
    atomic.write_json(rec_path, rec)
    return rec


def _clip_rows(npz_path, row, p: DecodeParams):
    """Yield the shard rows (dicts of schema fields) of one video's work item."""
    label = np.asarray(multi_hot(row.classes), dtype=np.uint8)
    with np.load(npz_path) as z:
        arrays = {k: z[k] for k in z.files}
    for i in range(len(arrays["waveform"])):
        start = int(arrays["start_sample"][i])
        yield {
            "frames": arrays["frames"][i], "waveform": arrays["waveform"][i],
            "mag": arrays["mag"][i], "label": label, "video_id": row.video_id.encode(),
            "split": row.split.encode(), "kind": row.kind.encode(),
            "window": arrays["window"][i], "start": start / p.sample_rate,
            "end": (start + p.clip_samples) / p.sample_rate, "start_sample": start,
            "frame_index": arrays["frame_index"][i],
            "frame_time": arrays["frame_index"][i].astype(np.float64) / p.fps,
        }


def assemble(videos, work_dir, out_dir, p: DecodeParams, phash: str) -> list[str]:
    """Write shards from complete work items ``videos`` ([(manifest row, clips)], in order);
    return the shard file names. Streams one video at a time."""
    from pipeline.data import shards

    total = sum(n for _, n in videos)
    m = p.max_clips_per_shard
    sizes = [min(m, total - i) for i in range(0, total, m)]
    attrs = shards.file_attrs(p, phash)
    # one video_id width for every shard, wide enough for the longest ID (none is ever cut)
    id_len = shards.encode_ids([row.video_id for row, _ in videos]).dtype.itemsize \
        if videos else shards.ID_LEN

    def rows():
        for row, _ in videos:
            yield from _clip_rows(_item_paths(work_dir, row.video_id)[0], row, p)

    stream = rows()
    names = []
    for index, n in enumerate(sizes):
        name = shards.shard_name(index)
        with shards.ShardWriter(Path(out_dir) / name, n, {**attrs, "shard_index": index},
                                p.compression, p.gzip_level, id_len) as w:
            for r in range(n):
                w.write(r, next(stream))
        names.append(name)
    return names


def _status_row(row, rec: dict) -> dict:
    out = {c: "" for c in STATUS_COLUMNS}
    out.update(video_id=row.video_id, split=row.split, kind=row.kind)
    out.update({k: rec[k] for k in STATUS_COLUMNS if k in rec})
    out["vfr"] = int(bool(rec.get("vfr", False))) if rec.get("status") == "ok" else ""
    return out


def write_status(path, status_rows) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=STATUS_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in sorted(status_rows, key=lambda r: r["video_id"]):
        w.writerow(r)
    atomic.write_text(path, buf.getvalue())


def decode_all(jobs: list[Job], p: DecodeParams, ex: ExecutorParams,
               progress: bool = True) -> dict[str, dict]:
    """Decode every job into its work item through the executor; video ID -> record."""
    records = {}
    for n, out in enumerate(map_videos(partial(decode_item, p=p), jobs, backend=ex.backend,
                                       jobs=ex.jobs, ray_address=ex.ray_address, desc="decode",
                                       progress=progress), start=1):
        if isinstance(out, Failure):
            records[out.item.video_id] = {"status": "failed", "reason": out.error}
        else:
            records[out["video_id"]] = out
        kill_point("VIDEO", n)   # tests: TRIBERT_KILL_AT_VIDEO=N dies after the N-th item
    return records


def plan(manifest_path: Path, work: Path):
    """Manifest rows by ID, records of rows that will not be decoded, and the decode jobs."""
    rows = {r.video_id: r for r in manifest.read(manifest_path)}
    records = {vid: {"status": "absent", "reason": f"manifest status {r.status}: {r.reason}"}
               for vid, r in rows.items() if not r.ok}
    jobs = []
    for vid, r in sorted(rows.items()):
        if not r.ok:
            continue
        if not r.video:
            records[vid] = {"status": "skipped", "reason": "manifest row has no video path"}
            continue
        jobs.append(Job(vid, str(manifest_path.parent / r.video), str(work)))
    return rows, records, jobs


def summarise(rows, records, ok, names, phash) -> dict:
    """The stage's summary.json content."""
    clips = Counter()
    for row, n in ok:
        clips[row.split or "none"] += n
    return {
        "params_hash": phash, "manifest_rows": len(rows), "decoded": len(ok),
        "skipped": dict(Counter(rec["reason"].split(":")[0] for rec in records.values()
                                if rec["status"] == "skipped")),
        "failed": sum(rec["status"] == "failed" for rec in records.values()),
        "absent": sum(rec["status"] == "absent" for rec in records.values()),
        "clips": dict(sorted(clips.items())), "shards": len(names),
        "video_seconds": round(sum(records[r.video_id]["duration"] for r, _ in ok), 3),
    }


def run(manifest_path, out_dir, p: DecodeParams, executor=None, progress: bool = True) -> dict:
    """The decode stage: every ``ok`` manifest row -> clip windows in ``out_dir``'s shards, plus
    ``status.csv`` (one row per manifest row) and ``summary.json``. Returns the summary."""
    from pipeline.data import shards

    manifest_path, out_dir = Path(manifest_path), Path(out_dir)
    phash = params_hash(p)
    work = out_dir / ".work" / phash
    work.mkdir(parents=True, exist_ok=True)
    atomic.clean_temporaries(out_dir)
    atomic.clean_temporaries(work)
    rows, records, jobs = plan(manifest_path, work)
    records.update(decode_all(jobs, p, executor or ExecutorParams(), progress))
    ok = [(rows[v], records[v]["clips"]) for v in sorted(records)
          if records[v]["status"] == "ok"]
    if not ok:  # keep the shards of an earlier run: nothing is deleted for nothing
        reasons = Counter(rec.get("reason", "").split(":")[0] or rec["status"]
                          for rec in records.values())
        raise NothingDecoded(
            f"{manifest_path}: none of {len(rows)} videos gave a clip ("
            + ", ".join(f"{n} {r}" for r, n in reasons.most_common()) + f"); {out_dir} was "
            "left as it was")
    names = assemble(ok, work, out_dir, p, phash)
    for stale in shards.list_shards(out_dir):
        if stale.name not in names:
            stale.unlink()
    write_status(out_dir / "status.csv", [_status_row(rows[v], rec) for v, rec in records.items()])
    summary = summarise(rows, records, ok, names, phash)
    atomic.write_json(out_dir / "summary.json", summary)
    shutil.rmtree(out_dir / ".work", ignore_errors=True)
    return summary
