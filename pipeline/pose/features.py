"""Stage ``pose_features``: per clip and sampled frame, the ST-GCN feature of each of the two
persons (2 x 256 x 68, paper Sec. 3.1), the person boxes and the absent flags, in pose shards
aligned row by row with the clip shards.

Output ``data/pose/shard-NNNN.h5`` (same names, row counts and row order as ``data/clips``;
N clips, F frames per clip):

=============  ====================  =======  ==============================================
features       (N, F, 2, 256, 68)    float16  ST-GCN features before the classifier
boxes          (N, F, 2, 5)          float32  x1, y1, x2, y2 in the clip frame divided by
                                              its side, clipped to [0, 1], and the box area
                                              (a share of the clip frame)
keypoints      (N, F, 2, 68, 3)      float32  x, y in clip-frame pixels, score (for drawing:
                                              ``tribert inspect --pose``); zeros when missing
absent         (N, F, 2)             uint8    1 where the person slot is empty in that frame
trajectory     (N, W, 2, 68, 3)      float16  the ST-GCN input (person-normalised x, y, score)
                                              of the W = ceil(clip seconds * fps) frames from
                                              the window's start (frame round(start * fps)),
                                              zeros outside the video: the time-varying pose
                                              of model/motion.py
video_id       (N,)                  S<w>     copied from the clip shard (a row check)
frame_index    (N, F)                int32    copied from the clip shard
=============  ====================  =======  ==============================================

Temporal context and stride: the feature of frame f comes from a window of ``context`` frames
[f - context/2, f + context/2) of the video's keypoints (zeros outside the video). ST-GCN's
output has ``context/4`` time steps (two stride-2 blocks); it is upsampled back to ``context``
steps by linear interpolation (``F.interpolate``, align_corners=False: output step i sits at
input position (i + 0.5)/4 - 0.5, so each output step is the stride-4 step covering it, blended
with its neighbour) and step ``context/2`` - frame f itself - is taken. Interpolating keeps the
one-to-one frame alignment the clip frames need without running a sliding window per frame,
and the window centred on f gives every frame the same past and future context.

Coordinates: the ST-GCN input is normalised per person over the whole video, as in training
(pipeline/pose/stgcn.py); boxes and drawn keypoints are mapped into the clip frame the visual
stream sees (the decode stage's ``resize`` of the source frame to ``frame_size``, read from the
clip shard's attributes), so a box token covers the same pixels as its person in the frame.

A person slot that is absent at frame f (no keypoints there, or f past the keypoint file's
end, or no keypoint file for the video) gets zero features, a zero box and absent = 1.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from pipeline import atomic
from pipeline.data import shards
from pipeline.params import params_hash
from pipeline.pose import keypoints as kpio
from pipeline.pose.trajectory import first_frame, trajectory_frames
from pipeline.pose.halpe import NUM_JOINTS, NUM_PERSONS
from pipeline.schema import PoseFeaturesParams
from pipeline.pose.stgcn import (FEATURE_CHANNELS, STGCN, STRIDE, drop_hands, load_checkpoint,
                                  to_input)

FLOAT16_MAX = 65504.0


class VideoPose:
    """One video's keypoints as network input plus per-frame boxes and absent flags."""

    def __init__(self, path: Path | None, size: int, resize: str):
        if path is None or not path.exists():
            self.x = np.zeros((3, 0, NUM_JOINTS, NUM_PERSONS), np.float32)
            self.boxes = np.zeros((0, NUM_PERSONS, 5), np.float32)
            self.keypoints = np.zeros((0, NUM_PERSONS, NUM_JOINTS, 3), np.float32)
            self.absent = np.ones((0, NUM_PERSONS), bool)
            return
        k = kpio.load(path)
        w, h = k["width"], k["height"]
        self.x = to_input(k["keypoints"], k["boxes"])
        self.absent = k["absent"].astype(bool)
        scale, offset = clip_frame_transform(w, h, size, resize)
        kp = k["keypoints"].copy()
        kp[..., :2] = kp[..., :2] * scale + offset
        kp[kp[..., 2] <= 0] = 0.0
        self.keypoints = kp.astype(np.float32)
        corners = k["boxes"].reshape(*k["boxes"].shape[:-1], 2, 2) * scale + offset
        self.boxes = normalised_boxes(corners.reshape(k["boxes"].shape), size)
        self.boxes[self.absent] = 0.0

    def window(self, f: int, context: int) -> np.ndarray:
        """Frames [f - context/2, f + context/2) of the input, zero outside the video."""
        out = np.zeros((3, context, NUM_JOINTS, NUM_PERSONS), np.float32)
        lo = f - context // 2
        a, b = max(0, lo), min(self.x.shape[1], lo + context)
        if b > a:
            out[:, a - lo:b - lo] = self.x[:, a:b]
        return out

    def trajectory(self, first: int, length: int) -> np.ndarray:
        """(length, 2, 68, 3) the network input of frames [first, first + length): x, y, score
        per person and joint, zero outside the video."""
        return self.window(first + length // 2, length).transpose(1, 3, 2, 0)

    def at(self, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (2, 5), keypoints (2, 68, 3), absent (2,)) of frame f (absent past the end)."""
        if 0 <= f < len(self.absent):
            return self.boxes[f], self.keypoints[f], self.absent[f]
        return (np.zeros((NUM_PERSONS, 5), np.float32),
                np.zeros((NUM_PERSONS, NUM_JOINTS, 3), np.float32), np.ones(NUM_PERSONS, bool))


def clip_frame_transform(width: int, height: int, size: int, resize: str):
    """(scale (2,), offset (2,)) mapping source-frame pixels to clip-frame pixels for the decode
    stage's resize modes: center_crop (short side to ``size``, centre crop), pad (long side to
    ``size``, centred) and stretch."""
    if resize == "stretch":
        return np.array([size / width, size / height]), np.zeros(2)
    if resize == "center_crop":
        s = size / min(width, height)
    elif resize == "pad":
        s = size / max(width, height)
    else:
        raise ValueError(f"unknown decode resize mode {resize!r}")
    return np.array([s, s]), (size - np.array([width, height]) * s) / 2


def normalised_boxes(boxes: np.ndarray, size: int) -> np.ndarray:
    """(..., 4) clip-frame pixel boxes -> (..., 5): x1, y1, x2, y2 divided by the frame side and
    clipped to [0, 1], and the clipped box's area (a share of the frame)."""
    b = np.clip(boxes.astype(np.float64) / size, 0.0, 1.0)
    area = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    return np.concatenate([b, area[..., None]], -1).astype(np.float32)


@torch.no_grad()
def centre_features(model: STGCN, windows: np.ndarray) -> np.ndarray:
    """(B, 3, C, V, M) windows -> (B, M, 256, V) features of each window's centre frame."""
    b, _, c, v, m = windows.shape
    if not getattr(model, "hands", True):   # trained on body joints only (stgcn.hands: false)
        windows = drop_hands(windows)
    f = model.features(torch.from_numpy(windows))               # (B, 256, C/4, V, M)
    assert f.shape == (b, FEATURE_CHANNELS, c // STRIDE, v, m), f.shape
    seq = f.permute(0, 1, 3, 4, 2).reshape(b, -1, c // STRIDE)   # time last for interpolate
    up = F.interpolate(seq, scale_factor=STRIDE, mode="linear", align_corners=False)
    centre = up[..., c // 2].reshape(b, FEATURE_CHANNELS, v, m)
    return centre.permute(0, 3, 1, 2).numpy()


def shard_features(clip_shard: Path, keypoint_dir: Path, model: STGCN, p: PoseFeaturesParams) -> dict:
    """Pose arrays of one clip shard (the datasets of the module docstring) and
    ``trajectory_fps``, the clip shard's frame rate (an attribute of the pose shard)."""
    with h5py.File(clip_shard, "r") as f:
        vids = f["video_id"][()]
        fidx = f["frame_index"][()].astype(np.int32)
        try:
            size, resize = int(f.attrs["frame_size"]), str(f.attrs["resize"])
            sr, fps = int(f.attrs["sample_rate"]), int(f.attrs["fps"])
            width = trajectory_frames(int(f.attrs["clip_samples"]), sr, fps)
            starts = first_frame(f["start_sample"][()], sr, fps)
        except KeyError as e:
            raise ValueError(f"{clip_shard}: clip shard lacks the attribute {e}") from None
    n, nf = fidx.shape
    videos = {v: VideoPose(keypoint_dir / f"{v.decode()}.npz", size, resize) for v in dict.fromkeys(vids)}
    # unique (video, frame) pairs, in first-seen order
    pairs = list(dict.fromkeys((v, int(t)) for v, row in zip(vids, fidx) for t in row))
    feats = {}
    for i in range(0, len(pairs), p.batch_size):
        chunk = pairs[i:i + p.batch_size]
        wins = np.stack([videos[v].window(t, p.context) for v, t in chunk])
        for key, feat in zip(chunk, centre_features(model, wins)):
            feats[key] = feat
    out = {"features": np.zeros((n, nf, NUM_PERSONS, FEATURE_CHANNELS, NUM_JOINTS), np.float16),
           "boxes": np.zeros((n, nf, NUM_PERSONS, 5), np.float32),
           "keypoints": np.zeros((n, nf, NUM_PERSONS, NUM_JOINTS, 3), np.float32),
           "absent": np.ones((n, nf, NUM_PERSONS), np.uint8),
           "trajectory": np.stack([videos[v].trajectory(int(s0), width)
                                   for v, s0 in zip(vids, starts)]).astype(np.float16)
           if n else np.zeros((0, width, NUM_PERSONS, NUM_JOINTS, 3), np.float16),
           "video_id": vids, "frame_index": fidx, "trajectory_fps": fps}
    for r in range(n):
        for j in range(nf):
            v, t = vids[r], int(fidx[r, j])
            boxes, kp, absent = videos[v].at(t)
            feat = np.clip(feats[(v, t)], -FLOAT16_MAX, FLOAT16_MAX)
            feat[absent] = 0.0
            out["features"][r, j] = feat.astype(np.float16)
            out["boxes"][r, j] = boxes
            out["keypoints"][r, j] = kp
            out["absent"][r, j] = absent
    return out


def write_shard(path: Path, arrays: dict, attrs: dict) -> None:
    """Write one pose shard atomically, byte-reproducibly: no timestamps, a fixed order, and
    gzip (h5py's lzf filter leaves its hash table uninitialised, so equal data can compress to
    different bytes)."""
    with atomic.atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in attrs.items():
                f.attrs[k] = v
            for name in ("features", "boxes", "keypoints", "absent", "trajectory", "video_id",
                         "frame_index"):
                a = arrays[name]
                multi = a.ndim > 1
                f.create_dataset(name, data=a, track_times=False,
                                 chunks=(1,) + a.shape[1:] if multi and len(a) else None,
                                 compression="gzip" if multi and len(a) else None,
                                 compression_opts=1 if multi and len(a) else None)


def run(clip_dir, keypoint_dir, checkpoint, out_dir, p: PoseFeaturesParams, log=print) -> dict:
    """The stage: one pose shard per clip shard. Returns counts for the log."""
    torch.set_num_threads(p.threads)
    clip_paths = shards.list_shards(clip_dir)
    if not clip_paths:
        raise FileNotFoundError(f"{clip_dir}: no clip shards ({shards.SHARD_GLOB})")
    model = load_checkpoint(checkpoint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.clean_temporaries(out_dir)
    for stale in set(shards.list_shards(out_dir)) - {out_dir / c.name for c in clip_paths}:
        stale.unlink()
    attrs = {"context": p.context, "stride_undo": "linear interpolation x4, centre frame",
             "feature_channels": FEATURE_CHANNELS, "params_hash": params_hash(p),
             "checkpoint_sha": _sha(checkpoint)}
    clips = persons = 0
    for path in clip_paths:
        arrays = shard_features(path, Path(keypoint_dir), model, p)
        write_shard(out_dir / path.name, arrays,
                    {**attrs, "trajectory_fps": arrays["trajectory_fps"]})
        clips += len(arrays["video_id"])
        persons += int((arrays["absent"] == 0).sum())
        log(f"pose_features: {path.name}: {len(arrays['video_id'])} clips")
    return {"shards": len(clip_paths), "clips": clips, "present_person_frames": persons}


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
