"""The pose shards' ``trajectory`` (pipeline/pose/features.py): each clip window's keypoints at
the video's frame rate, what the pose-motion branch of the model reads (model/motion.py). These
helpers fix which frames a window takes and check that shards fit a model; they import nothing
heavier than h5py, so the stages that only read shards (train, evaluate) stay light."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from pipeline.data import shards


def trajectory_frames(clip_samples: int, sample_rate: int, fps: int) -> int:
    """Frames of a window's trajectory: every frame whose time falls in the window."""
    return int(np.ceil(clip_samples * fps / sample_rate))


def first_frame(start_sample, sample_rate: int, fps: int):
    """The frame nearest to a window's start (array or scalar)."""
    return np.round(np.asarray(start_sample, np.float64) * fps / sample_rate).astype(np.int64)


def check_trajectory(pose_dir: Path, fps: float) -> None:
    """A ValueError naming the shard unless the pose shards of ``pose_dir`` hold trajectories
    at ``fps`` frames per second (what a model with the motion branch reads)."""
    paths = shards.list_shards(Path(pose_dir))
    if not paths:
        raise FileNotFoundError(f"{pose_dir}: no pose shards ({shards.SHARD_GLOB})")
    with h5py.File(paths[0], "r") as f:
        if "trajectory" not in f:
            raise ValueError(f"{paths[0]}: no trajectory (pose shards from before model.motion; "
                             f"run the pose_features stage again)")
        have = float(f.attrs.get("trajectory_fps", -1))
    if have != float(fps):
        raise ValueError(f"{paths[0]}: trajectory at {have:g} fps, the model reads {fps:g} fps "
                         f"(model.motion_fps must equal decode.fps)")
