"""``tribert bench pose``: keypoint backends' frames per second and pose-feature clips per second.

- annotations: AlphaPose JSON -> keypoint file for a generated video of two moving figures
  (probe, parse, resample, slot assignment, write).
- mediapipe: the whole backend (ffmpeg decode + BlazePose twice + hands per frame) on a video
  made of the real MUSIC21 sample frames when ../shared is present, else of ffmpeg's test
  pattern (nobody to find, which is faster: ``mediapipe_frames`` says which was used).
- alphapose: reported as unavailable unless keypoints.alphapose is configured.
- features: clips (3 frames each) per second through ST-GCN at the params' width and context.
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from pipeline import cmdpath
from pipeline.benchmark import music21_samples, peak_rss_mb, report

SHARED_SAMPLES = music21_samples()


def _moving_figures(frames: int, size: int) -> dict:
    """AlphaPose-style detections of two figures swaying across ``frames`` frames."""
    from pipeline.pose.annotations import Detection, box_from_joints

    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, (68, 2)) * size * [0.4, 1.0]
    out = {}
    for t in range(frames):
        dets = []
        for shift in (0.05, 0.55):
            kp = np.concatenate([base + [shift * size + 5 * np.sin(t / 3), 0],
                                 np.full((68, 1), 0.9)], 1).astype(np.float32)
            dets.append(Detection(kp, box_from_joints(kp), 0.9))
        out[t] = dets
    return out


def _video(path: Path, frames: int, fps: int, size: int, images: list | None = None) -> None:
    """An mp4 of ``frames`` frames: the given RGB images cycled, or ffmpeg's test pattern."""
    if images is None:
        src = ["-f", "lavfi", "-i", f"testsrc=size={size}x{size}:rate={fps}:duration={frames / fps}"]
        subprocess.run(["ffmpeg", "-v", "error", "-y", *src, "-pix_fmt", "yuv420p", cmdpath.arg(path)],
                       check=True)
        return
    h, w = images[0].shape[:2]
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(fps), "-i", "pipe:0", "-pix_fmt", "yuv420p", "-crf", "18", cmdpath.arg(path)]
    data = b"".join(images[i % len(images)].tobytes() for i in range(frames))
    subprocess.run(cmd, input=data, check=True)


def _real_frames() -> list | None:
    if not SHARED_SAMPLES.is_dir():
        return None
    import cv2

    out = []
    for mp4 in sorted(SHARED_SAMPLES.glob("*/video*.mp4")):
        cap = cv2.VideoCapture(str(mp4))
        ok, bgr = cap.read()
        cap.release()
        if ok:
            out.append(np.ascontiguousarray(cv2.resize(bgr, (224, 224))[:, :, ::-1]))
    return out or None


def bench_annotations(tmp: Path, frames: int) -> float:
    from pipeline.data.manifest import Row
    from pipeline.pose import keypoints
    from pipeline.pose.annotations import write_alphapose
    from pipeline.schema import KeypointsParams

    _video(tmp / "a.mp4", frames, 8, 256)
    write_alphapose(tmp / "a.json", _moving_figures(frames, 256))
    row = Row("benchAnnots", ("cello",), video="a.mp4", annotations="a.json")
    t = time.perf_counter()
    keypoints.extract_video(row, tmp, tmp / "kp", KeypointsParams(), 8)
    return frames / (time.perf_counter() - t)


def bench_mediapipe(tmp: Path, frames: int) -> tuple[float, str, float]:
    from pipeline.pose.mediapipe_backend import detect_video
    from pipeline.schema import MediapipeParams

    images = _real_frames()
    _video(tmp / "m.mp4", frames, 8, 224, images)
    t = time.perf_counter()
    dets, _ = detect_video(tmp / "m.mp4", 8, MediapipeParams())
    fps = len(dets) / (time.perf_counter() - t)
    found = float(np.mean([len(d) > 0 for d in dets]))
    return fps, "music21_samples" if images else "ffmpeg testsrc", found


def bench_features(tmp: Path, clips: int, width: float, context: int, threads: int) -> float:
    import h5py
    import torch

    from pipeline.pose import keypoints
    from pipeline.pose.features import shard_features
    from pipeline.pose.keypoints import assign_slots
    from pipeline.schema import PoseFeaturesParams
    from pipeline.pose.stgcn import STGCN

    torch.set_num_threads(threads)
    kp, boxes, absent = assign_slots([_moving_figures(1, 256)[0]] * 96)
    keypoints.save(tmp / "kp" / "benchVideo0.npz", kp, boxes, absent, fps=8, width=256,
                   height=256, backend="annotations")
    with h5py.File(tmp / "shard-0000.h5", "w") as f:
        f.attrs["frame_size"], f.attrs["resize"] = 224, "center_crop"
        f.attrs["sample_rate"], f.attrs["fps"], f.attrs["clip_samples"] = 11025, 8, 65535
        f["video_id"] = np.array([b"benchVideo0"] * clips)
        fidx = (np.arange(clips)[:, None] * 24 % 90 + np.arange(3)).astype(np.int32)
        f["frame_index"] = fidx
        # each window centred on its clip's middle frame, as decode places them (6 s, 48 frames)
        f["start_sample"] = ((fidx[:, 1] - 24) * 11025 // 8).astype(np.int64)
    model = STGCN(width=width).eval()
    t = time.perf_counter()
    shard_features(tmp / "shard-0000.h5", tmp / "kp", model,
                   PoseFeaturesParams(context=context, threads=threads))
    return clips / (time.perf_counter() - t)


@click.command("pose")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--frames", default=48, show_default=True, help="frames per backend run")
@click.option("--clips", default=16, show_default=True, help="clips for feature extraction")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def bench_pose(as_json, frames, clips, params_path):
    """Keypoint backends (frames/s) and pose-feature extraction (clips/s)."""
    from pipeline.params import load_params
    from pipeline.pose.alphapose_backend import AlphaposeUnavailable, check_config

    p = load_params(params_path)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-pose-") as d:
        tmp = Path(d)
        figures["annotations_frames_per_s"] = round(bench_annotations(tmp, frames), 2)
        mp_fps, source, found = bench_mediapipe(tmp, frames)
        figures["mediapipe_frames_per_s"] = round(mp_fps, 2)
        figures["mediapipe_frames"] = source
        figures["mediapipe_person_found_share"] = round(found, 3)
        try:
            check_config(p.keypoints.alphapose)
            figures["alphapose_frames_per_s"] = "configured; not timed (GPU tool)"
        except AlphaposeUnavailable:
            figures["alphapose_frames_per_s"] = "unavailable (not configured)"
        pf = p.pose_features
        figures["features_clips_per_s"] = round(bench_features(tmp, clips, p.stgcn.width, pf.context, pf.threads), 3)
        figures["features_width"] = p.stgcn.width
        figures["features_context"] = pf.context
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    report("pose", figures, as_json, "tribert bench pose")
