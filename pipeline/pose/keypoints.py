"""Stage ``keypoints``: per video, Halpe-68 keypoints of up to two persons per frame at the
decode frame rate, written to ``data/keypoints/<id>.npz``.

File contents (all arrays; frame t is the decode stage's frame t, i.e. time t / fps):
  keypoints (T, 2, 68, 3) float32  [x, y, score] in pixels of the video frame; missing joints
                                   (score 0) and absent persons are all zeros
  boxes     (T, 2, 4)     float32  [x1, y1, x2, y2] in pixels; zeros when absent
  absent    (T, 2)        bool     True where the slot holds nobody
  fps, width, height, backend      scalars describing the sampling and the frame size

Identity across frames (the same rule for every backend): at most two persons per frame are
kept (the highest person scores). When two are present, slot 0 is the one whose box centre is
further left and slot 1 the other, matching the synthetic stems' "performer k, left to right".
A lone person goes to the slot whose last seen box centre is nearest (slot 0 when neither slot
has been seen yet), so a duet keeps its slots when one performer is briefly lost.
"""
from __future__ import annotations

import io
import json
import subprocess
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from pipeline import atomic, cmdpath
from pipeline.data.manifest import Row
from pipeline.pose.annotations import Detection
from pipeline.pose.halpe import NUM_JOINTS, NUM_PERSONS
from pipeline.schema import KeypointsParams


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int


def probe(video: str | Path) -> VideoInfo:
    """Frame size, frame rate and frame count of a video (ffprobe)."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
           "stream=width,height,avg_frame_rate,nb_read_packets", "-of", "json",
           cmdpath.arg(video)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ValueError(f"{video}: ffprobe failed: {proc.stderr.strip()[:300]}")
    streams = json.loads(proc.stdout).get("streams") or []
    if not streams:
        raise ValueError(f"{video}: no video stream")
    s = streams[0]
    num, _, den = s["avg_frame_rate"].partition("/")
    fps = float(num) / float(den or 1) if float(den or 1) else 0.0
    if fps <= 0:
        raise ValueError(f"{video}: unknown frame rate {s['avg_frame_rate']!r}")
    return VideoInfo(int(s["width"]), int(s["height"]), fps, int(s["nb_read_packets"]))


def output_frames(info: VideoInfo, fps: float) -> int:
    """How many frames sampling the video at ``fps`` gives (ffmpeg's fps filter, rounding near)."""
    return max(1, int(np.floor(info.frames * fps / info.fps + 0.5)))


def source_index(t: np.ndarray, src_fps: float, fps: float, n_src: int) -> np.ndarray:
    """The source frame ffmpeg's ``fps`` filter shows at output frame t (the decode stage's
    frame t): source frame i lands in output slot round(i * fps / src_fps) and each slot keeps
    the last frame that landed in or before it, i.e. i = ceil((t + 1/2) * src_fps / fps) - 1
    (checked against ffmpeg for 16-30 fps sources)."""
    i = np.ceil((np.asarray(t) + 0.5) * src_fps / fps - 1e-9).astype(int) - 1
    return np.clip(i, 0, n_src - 1)


def _centre_x(det: Detection) -> float:
    return float(det.box[0] + det.box[2]) / 2


def assign_slots(frames: list[list[Detection]]):
    """Per-frame detections -> (keypoints (T,2,68,3), boxes (T,2,4), absent (T,2)), with the
    left/right identity rule of the module docstring."""
    t_len = len(frames)
    kp = np.zeros((t_len, NUM_PERSONS, NUM_JOINTS, 3), np.float32)
    boxes = np.zeros((t_len, NUM_PERSONS, 4), np.float32)
    absent = np.ones((t_len, NUM_PERSONS), bool)
    last = [None, None]  # last seen box centre x of each slot
    for t, dets in enumerate(frames):
        dets = sorted(dets, key=lambda d: -d.score)[:NUM_PERSONS]
        if len(dets) == 2:
            slots = [0, 1] if _centre_x(dets[0]) <= _centre_x(dets[1]) else [1, 0]
        elif len(dets) == 1:
            x = _centre_x(dets[0])
            dist = [abs(x - c) if c is not None else np.inf for c in last]
            slots = [int(np.argmin(dist)) if np.isfinite(min(dist)) else 0]
        else:
            slots = []
        for det, s in zip(dets, slots):
            kp[t, s] = det.keypoints
            boxes[t, s] = det.box
            absent[t, s] = False
            last[s] = _centre_x(det)
    return kp, boxes, absent


def _npz_bytes(arrays: dict) -> bytes:
    """An .npz archive with fixed member timestamps, so equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def save(path: str | Path, kp, boxes, absent, *, fps: float, width: int, height: int,
         backend: str) -> None:
    """Write one video's keypoint file atomically and deterministically."""
    t_len = len(kp)
    assert kp.shape == (t_len, NUM_PERSONS, NUM_JOINTS, 3), kp.shape
    assert boxes.shape == (t_len, NUM_PERSONS, 4) and absent.shape == (t_len, NUM_PERSONS)
    atomic.write_bytes(path, _npz_bytes({
        "keypoints": kp.astype(np.float32), "boxes": boxes.astype(np.float32),
        "absent": absent.astype(bool), "fps": np.float64(fps), "width": np.int64(width),
        "height": np.int64(height), "backend": np.str_(backend)}))


def load(path: str | Path) -> dict:
    """Read a keypoint file into a dict of arrays (scalars as Python values)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable keypoint file: {e}") from None
    for k in ("fps", "width", "height", "backend"):
        out[k] = out[k].item()
    return out


def detect(backend: str, video: Path, annotations: Path | None, fps: float,
           params: KeypointsParams) -> tuple[list[list[Detection]], VideoInfo]:
    """Run one backend on one video: detections per output frame and the video's info."""
    if backend == "annotations":
        from pipeline.pose.annotations import read_alphapose

        if annotations is None:
            raise ValueError(f"{video}: backend 'annotations' needs an AlphaPose JSON file; this "
                             f"video has none in the manifest (use keypoints.backend: mediapipe)")
        info = probe(video)
        by_frame = read_alphapose(annotations)
        check_fits(by_frame, info, video, annotations)
        return resample(by_frame, info, fps), info
    if backend == "mediapipe":
        from pipeline.pose.mediapipe_backend import detect_video

        return detect_video(video, fps, params.mediapipe)
    if backend == "alphapose":
        from pipeline.pose.alphapose_backend import run_alphapose

        info = probe(video)
        return resample(run_alphapose(video, params.alphapose), info, fps), info
    raise ValueError(f"keypoints.backend: unknown backend {backend!r}")


def check_fits(by_frame: dict[int, list[Detection]], info: VideoInfo, video: Path,
               source: Path) -> None:
    """Keypoints read from ``source`` (by source frame) belong to ``video``: none lies past its
    last frame (a slack of 2 frames or 2% for decoders that count a frame more or less) and they
    reach at least half-way through it; otherwise they are another video's (ValueError naming
    both files). No detection at all is left to the caller (a video with nobody in it)."""
    if not by_frame:
        return
    first, last = min(by_frame), max(by_frame)
    slack = max(2, int(0.02 * info.frames))
    if first < 0 or last >= info.frames + slack or last < info.frames // 2:
        raise ValueError(f"{source}: keypoints for frames {first}..{last} do not fit {video} "
                         f"({info.frames} frames): keypoints of another video?")


def resample(by_frame: dict[int, list[Detection]], info: VideoInfo, fps: float) -> list[list[Detection]]:
    """Source-frame detections -> one list per output frame at ``fps`` (:func:`source_index`)."""
    n_out = output_frames(info, fps)
    idx = source_index(np.arange(n_out), info.fps, fps, info.frames)
    return [by_frame.get(int(i), []) for i in idx]


def extract_video(row: Row, raw_dir: Path, out_dir: Path, params: KeypointsParams, fps: float) -> dict:
    """Keypoints of one manifest row -> ``out_dir/<id>.npz``; returns a small status record."""
    video = raw_dir / row.video
    ann = raw_dir / row.annotations if row.annotations else None
    frames, info = detect(params.backend, video, ann, fps, params)
    kp, boxes, absent = assign_slots(frames)
    save(out_dir / f"{row.video_id}.npz", kp, boxes, absent, fps=fps, width=info.width,
         height=info.height, backend=params.backend)
    return {"video_id": row.video_id, "frames": len(kp),
            "persons_per_frame": round(float((~absent).sum(1).mean()), 3) if len(kp) else 0.0}


def extraction_fn(raw_dir: Path, out_dir: Path, params: KeypointsParams, fps: float):
    """A picklable one-argument function for :func:`pipeline.executor.map_videos`."""
    return partial(extract_video, raw_dir=Path(raw_dir), out_dir=Path(out_dir), params=params, fps=fps)


STATUS_COLUMNS = ["video_id", "split", "status", "reason", "frames", "persons_per_frame"]


def run(manifest_path, out_dir, params: KeypointsParams, fps: float, executor=None,
        progress: bool = True) -> dict:
    """The stage: keypoint files for every usable manifest row, plus ``status.csv`` and
    ``summary.json`` in ``out_dir``. A failing video is recorded, never fatal."""
    import csv

    from pipeline.data import manifest
    from pipeline.executor import Failure, map_videos
    from pipeline.params import ExecutorParams

    manifest_path, out_dir = Path(manifest_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.clean_temporaries(out_dir)
    rows = [r for r in manifest.read(manifest_path) if r.ok and r.video]
    wanted = {f"{r.video_id}.npz" for r in rows}
    for stale in out_dir.glob("*.npz"):
        if stale.name not in wanted:
            stale.unlink()
    ex = executor or ExecutorParams()
    fn = extraction_fn(manifest_path.parent, out_dir, params, fps)
    records = {}
    for res in map_videos(fn, rows, backend=ex.backend, jobs=ex.jobs, ray_address=ex.ray_address,
                          desc=f"keypoints ({params.backend})", progress=progress):
        if isinstance(res, Failure):
            (out_dir / f"{res.item.video_id}.npz").unlink(missing_ok=True)
            records[res.item.video_id] = {"status": "failed", "reason": res.error}
        else:
            records[res["video_id"]] = {"status": "ok", "reason": "", **res}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=STATUS_COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in sorted(rows, key=lambda r: r.video_id):
        w.writerow({"video_id": r.video_id, "split": r.split, **records[r.video_id]})
    atomic.write_text(out_dir / "status.csv", buf.getvalue())
    ok = [v for v in records.values() if v["status"] == "ok"]
    summary = {"backend": params.backend, "fps": fps, "videos": len(rows), "ok": len(ok),
               "failed": len(rows) - len(ok), "frames": sum(v["frames"] for v in ok),
               "persons_per_frame": round(float(np.mean([v["persons_per_frame"] for v in ok])), 3) if ok else 0.0}
    atomic.write_json(out_dir / "summary.json", summary)
    return summary
