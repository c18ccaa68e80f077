"""Small real clip shards for the training tests: each class is a harmonic tone of its own pitch
and each video shows frames of its class's colour, so separation is learnable; the test split's
waveforms are NaN, so any read of test data poisons the loss or the metrics."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.data import shards
from pipeline.data import spectrogram as sp
from pipeline.classes import CLASS_INDEX, NUM_CLASSES
from pipeline.data.decode import DecodeParams

SIZE = 32
P = DecodeParams(size=SIZE)
# (class, split) per video; two clips per video
VIDEOS = [("violin", "train"), ("flute", "train"), ("tuba", "train"), ("drum", "train"),
          ("violin", "train"), ("tuba", "train"), ("flute", "val"), ("drum", "val"),
          ("violin", "val"), ("tuba", "test"), ("flute", "test")]
PITCH = {"violin": 660.0, "flute": 990.0, "tuba": 110.0, "drum": 220.0}


def clip(k: int, cls: str, split: str, window: int) -> dict:
    t = np.arange(sp.CLIP_SAMPLES) / sp.SAMPLE_RATE
    f0 = PITCH[cls] * (1 + 0.01 * k)
    wave = sum(np.sin(2 * np.pi * f0 * h * t + k) / h for h in (1, 2, 3)) * 0.3
    if split == "test":
        wave = wave * np.nan
    frames = np.zeros((3, SIZE, SIZE, 3), np.uint8)
    frames[..., CLASS_INDEX[cls] % 3] = 40 + 9 * CLASS_INDEX[cls]
    label = np.zeros(NUM_CLASSES, np.uint8)
    label[CLASS_INDEX[cls]] = 1
    return {
        "frames": frames, "waveform": wave.astype(np.float32),
        "mag": np.zeros((sp.WARP_SIZE, sp.N_FRAMES), np.float32), "label": label,
        "video_id": f"vid{k:08d}".encode(), "split": split.encode(), "kind": b"solo",
        "window": window, "start": 3.0 * window, "end": 3.0 * window + 5.94,
        "start_sample": 33075 * window, "frame_index": np.arange(3) + 8 * window,
        "frame_time": (np.arange(3) + 8 * window) / 8.0,
    }


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    rows = [clip(k, c, s, w) for k, (c, s) in enumerate(VIDEOS) for w in range(2)]
    half = len(rows) // 2
    for s, part in enumerate((rows[:half], rows[half:])):
        with shards.ShardWriter(d / shards.shard_name(s), len(part),
                                {**shards.file_attrs(P, "test"), "shard_index": s}) as w:
            for r, row in enumerate(part):
                w.write(r, row)
    return d


@pytest.fixture(scope="session")
def pose_dir(clip_dir, tmp_path_factory):
    """Pose shards row-aligned with ``clip_dir`` (the layout of pipeline/pose/features.py)."""
    import h5py

    d = tmp_path_factory.mktemp("pose")
    rng = np.random.default_rng(0)
    for path in shards.list_shards(clip_dir):
        ids = shards.read_index(path, ("video_id",))["video_id"]
        n = len(ids)
        with h5py.File(d / path.name, "w") as f:
            f["features"] = rng.standard_normal((n, 3, 2, 256, 68)).astype(np.float16)
            f["boxes"] = rng.random((n, 3, 2, 5)).astype(np.float32)
            absent = np.zeros((n, 3, 2), np.uint8)
            absent[:, :, 1] = 1                      # one performer per solo clip
            f["absent"] = absent
            f["keypoints"] = (rng.random((n, 3, 2, 68, 3)) * SIZE).astype(np.float32)
            f["trajectory"] = rng.random((n, 48, 2, 68, 3)).astype(np.float16)
            f.attrs["trajectory_fps"] = 8
            f["video_id"] = np.asarray(ids, dtype="S11")
    return d
