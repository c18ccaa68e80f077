"""Class-dependent keypoint motion for the pose tests (independent of pipeline.data.synth)."""
from __future__ import annotations

import numpy as np
from pipeline.pose.halpe import LEFT_HAND, NUM_JOINTS, RIGHT_HAND

SIZE = 256  # frame side in pixels

# A standing figure in frame-normalised units (x right, y down), body joints 0..25.
BODY = np.array([
    [0.50, 0.20], [0.48, 0.18], [0.52, 0.18], [0.46, 0.19], [0.54, 0.19], [0.42, 0.30],
    [0.58, 0.30], [0.40, 0.42], [0.60, 0.42], [0.42, 0.52], [0.58, 0.52], [0.45, 0.58],
    [0.55, 0.58], [0.45, 0.74], [0.55, 0.74], [0.45, 0.90], [0.55, 0.90], [0.50, 0.12],
    [0.50, 0.28], [0.50, 0.58], [0.44, 0.93], [0.56, 0.93], [0.43, 0.92], [0.57, 0.92],
    [0.46, 0.91], [0.54, 0.91]])
HAND = np.array([[0, 0]] + [[0.004 * (f - 2) + 0.002 * j * (f - 2) / 2, 0.006 * (j + 1)]
                            for f in range(5) for j in range(4)])


def figure(t: int, cls: int, phase: float, shift: float, rng) -> np.ndarray:
    """(68, 3) pixel joints of a figure whose wrists move in a class-specific way."""
    j = np.zeros((NUM_JOINTS, 2))
    j[:26] = BODY + [shift, 0]
    freq = 0.05 + 0.04 * cls
    j[10] += [0.06 * np.sin(2 * np.pi * freq * t + phase), 0.03 * cls]  # right wrist: bowing
    j[9] += [0.02 * cls, -0.04 * np.cos(2 * np.pi * freq * t + phase) * (cls % 2)]
    j[8] = (j[6] + j[10]) / 2 + [0.02, 0]
    j[7] = (j[5] + j[9]) / 2 - [0.02, 0]
    j[LEFT_HAND:LEFT_HAND + 21] = j[9] + HAND
    j[RIGHT_HAND:RIGHT_HAND + 21] = j[10] + HAND
    j += rng.normal(0, 0.003, j.shape)
    return np.concatenate([j * SIZE, np.full((NUM_JOINTS, 1), 0.9)], 1)


def keypoint_sequence(cls: int, frames: int, rng, duet_with: int | None = None) -> np.ndarray:
    """(T, 2, 68, 3) keypoints of a solo (second person absent) or a duet."""
    kp = np.zeros((frames, 2, NUM_JOINTS, 3), np.float32)
    phases = rng.uniform(0, 2 * np.pi, 2)
    for t in range(frames):
        if duet_with is None:
            kp[t, 0] = figure(t, cls, phases[0], rng.uniform(-0.01, 0.01), rng)
        else:
            kp[t, 0] = figure(t, cls, phases[0], -0.22, rng)
            kp[t, 1] = figure(t, duet_with, phases[1], 0.22, rng)
    return kp


def boxes_of(kp: np.ndarray) -> np.ndarray:
    """(T, M, 4) boxes around the scored joints of (T, M, 68, 3) keypoints (zeros when absent)."""
    from pipeline.pose.annotations import box_from_joints

    return np.array([[box_from_joints(person) for person in frame] for frame in kp], np.float32)
