"""Tiny real data for the tests of the stages that look into a trained model (embed, probe,
attention): clip shards (two shards, all three splits, solos and a duet), row-aligned pose shards
and a random-init tiny TriBERT package."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from support import save_model
from model.tribert import TriBERT
from pipeline.data import shards
from pipeline.data import spectrogram as sp
from pipeline.classes import CLASS_INDEX, NUM_CLASSES
from pipeline.data.decode import DecodeParams

SIZE = 32
FRAMES, PERSONS, POSE_C, POSE_V = 3, 2, 4, 5
# (classes, split) per video; two clips per video
VIDEOS = [(("violin",), "train"), (("flute",), "train"), (("tuba",), "train"),
          (("violin", "tuba"), "train"), (("flute",), "val"), (("tuba",), "val"),
          (("violin",), "test"), (("flute",), "test")]
TINY = dict(backbone="resnet_tiny", image_size=64, hidden_visual=16, hidden_pose=16,
            hidden_audio=8, hidden_coattention=16, heads=2, ffn=32, layers=1, dropout=0.1,
            vggish_channels=(4, 4, 4, 4, 4, 4, 4), unet_depth=3, unet_channels=4,
            unet_max_channels=8, num_classes=NUM_CLASSES, frames=FRAMES, persons=PERSONS,
            pose_channels=POSE_C, pose_joints=POSE_V)


def _clip(k: int, classes: tuple[str, ...], split: str, window: int) -> dict:
    t = np.arange(sp.CLIP_SAMPLES) / sp.SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * 110.0 * (1 + CLASS_INDEX[c]) * t + k) for c in classes) * 0.2
    frames = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    frames[..., CLASS_INDEX[classes[0]] % 3] = 40 + 9 * CLASS_INDEX[classes[0]] + window
    label = np.zeros(NUM_CLASSES, np.uint8)
    label[[CLASS_INDEX[c] for c in classes]] = 1
    return {
        "frames": frames, "waveform": wave.astype(np.float32),
        "mag": np.zeros((sp.WARP_SIZE, sp.N_FRAMES), np.float32), "label": label,
        "video_id": f"vid{k:08d}".encode(), "split": split.encode(),
        "kind": b"duet" if len(classes) > 1 else b"solo",
        "window": window, "start": 3.0 * window, "end": 3.0 * window + 5.94,
        "start_sample": 33075 * window, "frame_index": np.arange(FRAMES) + 8 * window,
        "frame_time": (np.arange(FRAMES) + 8 * window) / 8.0,
    }


def write_clips(d: Path) -> Path:
    """Two clip shards of the videos in :data:`VIDEOS` (splits interleaved across shards)."""
    d.mkdir(parents=True, exist_ok=True)
    rows = [_clip(k, c, s, w) for k, (c, s) in enumerate(VIDEOS) for w in range(2)]
    order = [rows[i] for i in (list(range(0, len(rows), 2)) + list(range(1, len(rows), 2)))]
    half = len(order) // 2
    p = DecodeParams(size=SIZE)
    for s, part in enumerate((order[:half], order[half:])):
        with shards.ShardWriter(d / shards.shard_name(s), len(part),
                                {**shards.file_attrs(p, "test"), "shard_index": s}) as w:
            for r, row in enumerate(part):
                w.write(r, row)
    return d


def write_pose(clip_dir: Path, d: Path, seed: int = 0) -> Path:
    """Pose shards row-aligned with ``clip_dir``; the second person is absent in solo clips."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for path in shards.list_shards(clip_dir):
        idx = shards.read_index(path, ("video_id", "kind"))
        n = len(idx["video_id"])
        with h5py.File(d / path.name, "w") as f:
            feats = rng.standard_normal((n, FRAMES, PERSONS, POSE_C, POSE_V))
            f["features"] = feats.astype(np.float16)
            f["boxes"] = rng.random((n, FRAMES, PERSONS, 5)).astype(np.float32)
            absent = np.zeros((n, FRAMES, PERSONS), np.uint8)
            absent[idx["kind"] == "solo", :, 1] = 1
            f["absent"] = absent
            f["keypoints"] = rng.random((n, FRAMES, PERSONS, 68, 3)).astype(np.float32)
            f["trajectory"] = rng.random((n, 48, PERSONS, 68, 3)).astype(np.float16)
            f.attrs["trajectory_fps"] = 8
            f["video_id"] = np.asarray(idx["video_id"], dtype="S11")
    return d


def write_model(path: Path, seed: int = 0) -> Path:
    """A random-init tiny TriBERT package."""
    torch.manual_seed(seed)
    save_model(path, TriBERT(**TINY))
    return path
