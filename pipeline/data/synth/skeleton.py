"""A 2-D performer skeleton in the Halpe-68 layout (REFERENCE.md, "Pose layout").

Coordinates are "body units": the standing figure is 100 units tall, the hip centre (joint 19)
is the origin, x points to the image right (the performer's left: figures face the camera) and
y points down. The hold functions (pipeline.data.synth.holds) choose wrist targets, finger curls and
head/torso offsets; this module turns them into the 68 joints.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_JOINTS = 68
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
HEAD, NECK, HIP = 17, 18, 19
L_BIG_TOE, R_BIG_TOE, L_SMALL_TOE, R_SMALL_TOE, L_HEEL, R_HEEL = 20, 21, 22, 23, 24, 25
L_HAND, R_HAND = 26, 47     # first joint (the hand's wrist) of each 21-joint hand

BODY_EDGES = ((0, 1), (0, 2), (1, 3), (2, 4), (5, 18), (6, 18), (5, 7), (7, 9), (6, 8), (8, 10),
              (17, 18), (18, 19), (19, 11), (19, 12), (11, 13), (12, 14), (13, 15), (14, 16),
              (20, 24), (21, 25), (23, 25), (22, 24), (15, 24), (16, 25), (0, 17))
HAND_EDGES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
              (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18),
              (18, 19), (19, 20))

UPPER_ARM, FOREARM, HAND_SIZE = 16.0, 15.0, 8.5

# finger bases in the palm frame (along the hand, towards the thumb side), segment lengths and
# splay, all in hand sizes; order: thumb, index, middle, ring, little (Halpe local 1-4, 5-8, ...)
_FINGER_BASE = ((0.12, 0.22), (0.45, 0.17), (0.48, 0.05), (0.46, -0.07), (0.42, -0.18))
_FINGER_SEGS = ((0.22, 0.18, 0.15), (0.25, 0.15, 0.12), (0.27, 0.17, 0.12), (0.25, 0.15, 0.11),
                (0.2, 0.12, 0.1))
_FINGER_SPLAY = (0.9, 0.15, 0.0, -0.12, -0.28)


@dataclass(frozen=True)
class Stance:
    """Legs of a standing or a seated performer (seated thighs point at the camera)."""

    seated: bool = False
    spread: float = 0.0   # extra feet spread in units
    shoulders: float = 10.0  # half the shoulder width in units (build)


@dataclass
class Pose:
    """What a hold decides for one frame; :func:`joints` turns it into 68 joints."""

    l_wrist: tuple[float, float]
    r_wrist: tuple[float, float]
    l_angle: float = np.pi / 2          # hand direction (radians, image frame: 0 = right, pi/2 = down)
    r_angle: float = np.pi / 2
    l_curl: tuple = (0.3, 0.3, 0.3, 0.3, 0.3)
    r_curl: tuple = (0.3, 0.3, 0.3, 0.3, 0.3)
    head: tuple[float, float] = (0.0, 0.0)   # head offset (nod, tilt)
    torso: tuple[float, float] = (0.0, 0.0)  # shoulder offset (sway, breath)
    r_ankle_lift: float = 0.0                # a foot tapping or pressing a pedal
    extra: dict = field(default_factory=dict)


def _legs(st: Stance) -> dict[int, tuple[float, float]]:
    s = st.spread
    if st.seated:
        knee, ankle = (13.0 + s, 8.0), (11.0 + s, 30.0)
    else:
        knee, ankle = (8.0 + s / 2, 22.0), (8.0 + s, 44.0)
    out = {}
    for side, (hip, kn, an, big, small, heel) in ((1, (L_HIP, L_KNEE, L_ANKLE, L_BIG_TOE,
                                                        L_SMALL_TOE, L_HEEL)),
                                                  (-1, (R_HIP, R_KNEE, R_ANKLE, R_BIG_TOE,
                                                        R_SMALL_TOE, R_HEEL))):
        out[hip] = (7.0 * side, 0.0)
        out[kn] = (knee[0] * side, knee[1])
        out[an] = (ankle[0] * side, ankle[1])
        out[heel] = (ankle[0] * side, ankle[1] + 3.0)
        out[big] = ((ankle[0] - 1.5) * side, ankle[1] + 6.0)
        out[small] = ((ankle[0] + 3.5) * side, ankle[1] + 5.5)
    return out


def arm(shoulder: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-link inverse kinematics: (elbow, wrist) reaching for ``target``; the elbow takes the
    lower, outer of the two solutions; an unreachable target is approached along the line."""
    d = target - shoulder
    dist = float(np.hypot(*d))
    reach = np.clip(dist, abs(UPPER_ARM - FOREARM) + 1e-3, UPPER_ARM + FOREARM - 1e-3)
    u = d / max(dist, 1e-6)
    wrist = shoulder + u * reach
    a = (UPPER_ARM ** 2 - FOREARM ** 2 + reach ** 2) / (2 * reach)
    h = np.sqrt(max(UPPER_ARM ** 2 - a ** 2, 0.0))
    perp = np.array([-u[1], u[0]])
    cands = [shoulder + u * a + perp * h, shoulder + u * a - perp * h]
    outward = np.sign(shoulder[0]) or 1.0
    elbow = max(cands, key=lambda e: e[1] + 0.6 * outward * e[0])
    return elbow, wrist


def hand(wrist: np.ndarray, angle: float, curls, side: int) -> np.ndarray:
    """21 joints of a hand (Halpe local order) from its wrist, direction and finger curls (0 open,
    1 closed). ``side`` is +1 for the left hand, -1 for the right (mirrors the thumb)."""
    d = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-d[1], d[0]]) * side
    pts = [wrist]
    for f in range(5):
        bu, bv = _FINGER_BASE[f]
        p = wrist + HAND_SIZE * (bu * d + bv * n)
        ang = angle + side * _FINGER_SPLAY[f]
        c = float(np.clip(curls[f], 0.0, 1.0))
        pts.append(p)
        for seg in _FINGER_SEGS[f]:
            ang -= side * c * 0.7
            p = p + HAND_SIZE * seg * (1.0 - 0.35 * c) * np.array([np.cos(ang), np.sin(ang)])
            pts.append(p)
    out = np.array(pts)
    assert out.shape == (21, 2), out.shape
    return out


def joints(pose: Pose, stance: Stance) -> np.ndarray:
    """The (68, 2) joints, in body units, of one frame."""
    j = np.zeros((N_JOINTS, 2))
    for k, v in _legs(stance).items():
        j[k] = v
    if pose.r_ankle_lift:
        for k in (R_ANKLE, R_HEEL, R_BIG_TOE, R_SMALL_TOE):
            j[k, 1] -= pose.r_ankle_lift
    tx, ty = pose.torso
    hx, hy = pose.head
    j[HIP] = (0.0, 0.0)
    j[NECK] = (tx, -34.0 + ty)
    j[L_SHOULDER] = (stance.shoulders + tx, -32.0 + ty)
    j[R_SHOULDER] = (-stance.shoulders + tx, -32.0 + ty)
    for k, (x, y) in ((HEAD, (0, -50)), (NOSE, (0, -41)), (L_EYE, (2.2, -43)), (R_EYE, (-2.2, -43)),
                      (L_EAR, (4.5, -42)), (R_EAR, (-4.5, -42))):
        j[k] = (x + tx + hx, y + ty + hy)
    for sh, el, wr, hd, target, ang, curl, side in (
            (L_SHOULDER, L_ELBOW, L_WRIST, L_HAND, pose.l_wrist, pose.l_angle, pose.l_curl, 1),
            (R_SHOULDER, R_ELBOW, R_WRIST, R_HAND, pose.r_wrist, pose.r_angle, pose.r_curl, -1)):
        elbow, wrist = arm(j[sh], np.asarray(target, float))
        j[el], j[wr] = elbow, wrist
        j[hd: hd + 21] = hand(wrist, ang, curl, side)
    return j
