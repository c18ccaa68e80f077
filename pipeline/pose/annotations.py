"""AlphaPose's JSON result format: parse it into per-frame detections, and write it.

One file per video: a JSON list of detections ``{"image_id": "<frame>.jpg", "category_id": 1,
"keypoints": [x0, y0, s0, ...], "score": s, "box": [x, y, w, h], "idx": track}`` in pixels of
the video frame, the frame index counting the video's own frames from 0 (AlphaPose writes
"0.jpg", "1.jpg", ... for a video; the synthetic data writes 6 digits; both are read).

Joint layouts accepted: Halpe-68 (68 joints, this project's layout), Halpe-136 (body 0..25,
face 26..93 dropped, hands 94..135) and Halpe-26 (body only; hands then have score 0).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.pose.halpe import NUM_JOINTS


@dataclass(frozen=True)
class Detection:
    """One person in one frame: Halpe-68 joints (68, 3) [x, y, score] and box [x1, y1, x2, y2]."""

    keypoints: np.ndarray
    box: np.ndarray
    score: float

    def __post_init__(self):
        assert self.keypoints.shape == (NUM_JOINTS, 3), self.keypoints.shape
        assert self.box.shape == (4,), self.box.shape


def box_from_joints(kp: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """[x1, y1, x2, y2] around the joints with score > 0, grown by ``margin`` of its size."""
    seen = kp[kp[:, 2] > 0, :2]
    if not len(seen):
        return np.zeros(4, np.float32)
    lo, hi = seen.min(0), seen.max(0)
    pad = (hi - lo) * margin
    return np.concatenate([lo - pad, hi + pad]).astype(np.float32)


def _to_halpe68(values, where: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size % 3:
        raise ValueError(f"{where}: keypoints must be a flat list of x, y, score triples, "
                         f"got {arr.size} numbers")
    joints = arr.reshape(-1, 3)
    n = len(joints)
    if n == NUM_JOINTS:
        out = joints
    elif n == 136:
        out = np.concatenate([joints[:26], joints[94:136]])
    elif n == 26:
        out = np.concatenate([joints, np.zeros((42, 3))])
    else:
        raise ValueError(f"{where}: {n} joints; expected Halpe-68 (68), Halpe-136 or Halpe-26")
    if not np.isfinite(out).all():
        raise ValueError(f"{where}: keypoints contain NaN or infinity")
    out = out.astype(np.float32)
    out[out[:, 2] <= 0] = 0.0  # a joint with score 0 is missing: no coordinates either
    return out


def _frame_index(image_id, where: str) -> int:
    stem = Path(str(image_id)).stem
    try:
        idx = int(stem)
    except ValueError:
        raise ValueError(f"{where}: image_id {image_id!r} is not a frame number like '000012.jpg'") from None
    if idx < 0:
        raise ValueError(f"{where}: negative frame index {idx}")
    return idx


def _detection(d, where: str) -> tuple[int, Detection]:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    for key in ("image_id", "keypoints"):
        if key not in d:
            raise ValueError(f"{where}: missing key {key!r}")
    if d.get("category_id", 1) != 1:
        raise ValueError(f"{where}: category_id {d['category_id']!r} is not a person (1)")
    kp = _to_halpe68(d["keypoints"], where)
    if "box" in d:
        x, y, w, h = (float(v) for v in d["box"])
        if w < 0 or h < 0:
            raise ValueError(f"{where}: box {d['box']} has a negative size")
        box = np.array([x, y, x + w, y + h], np.float32)
    else:
        box = box_from_joints(kp)
    score = float(d.get("score", float(kp[:, 2].mean())))
    return _frame_index(d["image_id"], where), Detection(kp, box, score)


def read_alphapose(path: str | Path) -> dict[int, list[Detection]]:
    """Detections by source-frame index. Any problem raises ValueError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read AlphaPose results: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of detections (AlphaPose's result "
                         f"format), got {type(data).__name__}")
    frames: dict[int, list[Detection]] = {}
    for i, d in enumerate(data):
        try:
            frame, det = _detection(d, f"detection {i}")
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None
        frames.setdefault(frame, []).append(det)
    return frames


def to_alphapose(frames: dict[int, list[Detection]]) -> list[dict]:
    """The inverse of :func:`read_alphapose` (track id = position in the frame's list)."""
    out = []
    for frame in sorted(frames):
        for k, det in enumerate(frames[frame]):
            x1, y1, x2, y2 = (round(float(v), 3) for v in det.box)
            out.append({
                "image_id": f"{frame:06d}.jpg", "category_id": 1,
                "keypoints": [round(float(v), 3) for v in det.keypoints.reshape(-1)],
                "score": round(float(det.score), 4), "box": [x1, y1, round(x2 - x1, 3), round(y2 - y1, 3)],
                "idx": k,
            })
    return out


def write_alphapose(path: str | Path, frames: dict[int, list[Detection]]) -> None:
    """Write detections as an AlphaPose result file, atomically."""
    atomic.write_json(path, to_alphapose(frames), indent=None)
