"""The ``mediapipe`` keypoints backend: MediaPipe 0.10.21 legacy solutions (``mp.solutions.pose``,
BlazePose with model_complexity 1, and ``mp.solutions.hands``) mapped onto Halpe-68.

Joint mapping (BlazePose index in brackets; "copy" = the landmark itself, score = its visibility;
a derived joint's score is the minimum of the scores it is made from):

| Halpe-68 joint            | source                                                     |
| ------------------------- | ---------------------------------------------------------- |
| 0 nose                    | copy [0]                                                   |
| 1 l-eye, 2 r-eye          | copy [2], [5] (eye centres; inner/outer corners unused)    |
| 3 l-ear, 4 r-ear          | copy [7], [8]                                              |
| 5..10 shoulders, elbows, wrists (l, r) | copy [11] [12] [13] [14] [15] [16]            |
| 11..16 hips, knees, ankles (l, r)      | copy [23] [24] [25] [26] [27] [28]            |
| 17 head (top of the head) | derived: eye midpoint + 1.5 x (eye midpoint - mouth midpoint [9],[10]) |
| 18 neck                   | derived: midpoint of the shoulders [11], [12]              |
| 19 hip                    | derived: midpoint of the hips [23], [24]                   |
| 20 l-big-toe, 21 r-big-toe | copy [31], [32] (foot index = tip of the foot)            |
| 22 l-small-toe, 23 r-small-toe | derived: 0.75 x foot index + 0.25 x heel ([31],[29]; [32],[30]) |
| 24 l-heel, 25 r-heel      | copy [29], [30]                                            |
| 26..46 left hand, 47..67 right hand | copy of the hand model's 21 landmarks (same order: wrist, thumb, index, middle, ring, little, base to tip); score = the hand's detection (handedness) score |

BlazePose joints with visibility below ``min_visibility`` get score 0 (missing), as do joints
it places outside the frame.

Hands to persons: the hand model runs once on the whole frame (up to 4 hands); each hand is
matched to the nearest BlazePose wrist (joint 9 or 10 of either person) whose distance is under
the hand's own size, closest pairs first; unmatched hands are dropped, except when no body was
found at all: then the hands form a hands-only person (left/right by MediaPipe's handedness
label, which assumes a mirrored selfie image and is therefore swapped).

The second person: BlazePose finds one person per call. After the first is found, its box (its
visible joints, grown 10%) is filled with the frame's mean colour and BlazePose runs again on
the masked frame; the new find is kept when its box overlaps the first by IoU <= max_overlap
and its area is at least min_second_area times the first's (smaller finds were phantoms on
instruments in the real MUSIC21 frames).
Both calls use static-image mode (no tracking state), so results do not depend on frame order.
"""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import numpy as np

from pipeline import cmdpath
from pipeline.pose.annotations import Detection, box_from_joints
from pipeline.pose.halpe import LEFT_HAND, NUM_JOINTS, RIGHT_HAND
from pipeline.pose.keypoints import VideoInfo, probe
from pipeline.schema import MediapipeParams

# (Halpe joint, BlazePose landmark) pairs copied as they are
COPIED = ((0, 0), (1, 2), (2, 5), (3, 7), (4, 8), (5, 11), (6, 12), (7, 13), (8, 14), (9, 15),
          (10, 16), (11, 23), (12, 24), (13, 25), (14, 26), (15, 27), (16, 28), (20, 31),
          (21, 32), (24, 29), (25, 30))
HEAD_ABOVE_EYES = 1.5   # crown = eyes + 1.5 x (eyes - mouth)
SMALL_TOE_TO_HEEL = 0.25


def _combine(parts: np.ndarray, weights) -> np.ndarray:
    """Weighted sum of landmark rows [x, y, score]; score = min of the parts' scores."""
    xy = np.tensordot(np.asarray(weights, np.float64), parts[:, :2], axes=1)
    return np.array([xy[0], xy[1], parts[:, 2].min()])


def body_to_halpe(lm: np.ndarray) -> np.ndarray:
    """BlazePose (33, 3) [x, y, score] in pixels -> Halpe-68 (68, 3) with the hands empty."""
    assert lm.shape == (33, 3), lm.shape
    out = np.zeros((NUM_JOINTS, 3))
    for h, b in COPIED:
        out[h] = lm[b]
    eyes, mouth = _combine(lm[[2, 5]], [0.5, 0.5]), _combine(lm[[9, 10]], [0.5, 0.5])
    k = HEAD_ABOVE_EYES
    out[17] = _combine(np.stack([eyes, mouth]), [1 + k, -k])
    out[18] = _combine(lm[[11, 12]], [0.5, 0.5])
    out[19] = _combine(lm[[23, 24]], [0.5, 0.5])
    out[22] = _combine(lm[[31, 29]], [1 - SMALL_TOE_TO_HEEL, SMALL_TOE_TO_HEEL])
    out[23] = _combine(lm[[32, 30]], [1 - SMALL_TOE_TO_HEEL, SMALL_TOE_TO_HEEL])
    return out


def _landmarks(result_landmarks, width: int, height: int, with_visibility: bool) -> np.ndarray:
    pts = [(p.x * width, p.y * height, p.visibility if with_visibility else 1.0)
           for p in result_landmarks.landmark]
    return np.array(pts, np.float64)


def _clean(kp: np.ndarray, width: int, height: int, min_score: float) -> np.ndarray:
    """Zero joints below ``min_score`` or outside the frame."""
    kp = kp.copy()
    outside = (kp[:, 0] < 0) | (kp[:, 0] >= width) | (kp[:, 1] < 0) | (kp[:, 1] >= height)
    kp[(kp[:, 2] < min_score) | outside] = 0.0
    return kp


def _clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.clip(box, 0, [width, height, width, height]).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FrameDetector:
    """BlazePose + hands on single RGB frames (uint8, (H, W, 3)) -> Halpe-68 detections."""

    def __init__(self, params: MediapipeParams):
        import mediapipe as mp

        self.params = params
        self._stack = contextlib.ExitStack()
        make_pose = lambda: mp.solutions.pose.Pose(  # noqa: E731 - two identical instances
            static_image_mode=True, model_complexity=params.model_complexity,
            min_detection_confidence=params.min_detection_confidence)
        self.pose = self._stack.enter_context(make_pose())
        self.pose2 = self._stack.enter_context(make_pose()) if params.second_person else None
        self.hands = (self._stack.enter_context(mp.solutions.hands.Hands(
            static_image_mode=True, max_num_hands=4,
            min_detection_confidence=params.min_detection_confidence)) if params.hands else None)

    def close(self):
        self._stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _body(self, model, rgb) -> np.ndarray | None:
        h, w = rgb.shape[:2]
        res = model.process(rgb)
        if res.pose_landmarks is None:
            return None
        kp = _clean(body_to_halpe(_landmarks(res.pose_landmarks, w, h, True)), w, h,
                    self.params.min_visibility)
        return kp if (kp[:, 2] > 0).sum() >= 3 else None

    def bodies(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Up to two Halpe-68 bodies (hands empty) found by mask-and-rerun."""
        h, w = rgb.shape[:2]
        first = self._body(self.pose, rgb)
        if first is None:
            return []
        found = [first]
        if self.pose2 is not None:
            box = _clip_box(box_from_joints(first), w, h).round().astype(int)
            masked = rgb.copy()
            masked[box[1]:box[3], box[0]:box[2]] = rgb.reshape(-1, 3).mean(0).astype(np.uint8)
            second = self._body(self.pose2, masked)
            if second is not None and self._plausible_second(first, second):
                found.append(second)
        return found

    def _plausible_second(self, first: np.ndarray, second: np.ndarray) -> bool:
        """Not the first person again (IoU) and not a phantom much smaller than the first."""
        b1, b2 = box_from_joints(first), box_from_joints(second)
        area = lambda b: float((b[2] - b[0]) * (b[3] - b[1]))  # noqa: E731
        return (iou(b1, b2) <= self.params.max_overlap
                and area(b2) >= self.params.min_second_area * area(b1))

    def hand_list(self, rgb: np.ndarray) -> list[tuple[np.ndarray, str, float]]:
        """Hands as ((21, 3) [x, y, score] pixels, "left"/"right" for a non-mirrored image, score)."""
        if self.hands is None:
            return []
        h, w = rgb.shape[:2]
        res = self.hands.process(rgb)
        if not res.multi_hand_landmarks:
            return []
        out = []
        for lms, handed in zip(res.multi_hand_landmarks, res.multi_handedness):
            c = handed.classification[0]
            pts = _landmarks(lms, w, h, False)
            pts[:, 2] = c.score
            side = "right" if c.label == "Left" else "left"  # the label assumes a mirrored image
            out.append((_clean(pts, w, h, 1e-6), side, float(c.score)))
        return out

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        bodies = self.bodies(rgb)
        hands = self.hand_list(rgb)
        if bodies:
            attach_hands(bodies, hands)
        elif hands:
            bodies = [hands_only(hands)]
        dets = []
        for kp in bodies:
            seen = kp[:, 2] > 0
            dets.append(Detection(kp.astype(np.float32), _clip_box(box_from_joints(kp), w, h),
                                  float(kp[seen, 2].mean())))
        return dets


def attach_hands(bodies: list[np.ndarray], hands) -> None:
    """Write each hand into the body whose wrist is nearest (in place), closest pairs first."""
    pairs = []
    for hi, (pts, _, _) in enumerate(hands):
        if pts[0, 2] <= 0:
            continue
        size = float(np.linalg.norm(pts[pts[:, 2] > 0, :2].ptp(0)))
        for bi, kp in enumerate(bodies):
            for wrist, start in ((9, LEFT_HAND), (10, RIGHT_HAND)):
                if kp[wrist, 2] > 0:
                    d = float(np.linalg.norm(kp[wrist, :2] - pts[0, :2]))
                    if d <= size:
                        pairs.append((d, hi, bi, start))
    used_hands, used_slots = set(), set()
    for d, hi, bi, start in sorted(pairs):
        if hi in used_hands or (bi, start) in used_slots:
            continue
        used_hands.add(hi)
        used_slots.add((bi, start))
        bodies[bi][start:start + 21] = hands[hi][0]


def hands_only(hands) -> np.ndarray:
    """A person made of hands alone (no body found): one hand per side, the best-scored."""
    kp = np.zeros((NUM_JOINTS, 3))
    for side, start in (("left", LEFT_HAND), ("right", RIGHT_HAND)):
        cands = [h for h in hands if h[1] == side]
        if cands:
            kp[start:start + 21] = max(cands, key=lambda h: h[2])[0]
    return kp


def read_frames(video: str | Path, fps: float, info: VideoInfo):
    """Yield the video's frames sampled at ``fps`` as RGB uint8 arrays at the native size."""
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", cmdpath.arg(video), "-vf", f"fps={fps}",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    frame_bytes = info.width * info.height * 3
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            yield np.frombuffer(buf, np.uint8).reshape(info.height, info.width, 3)
        err = proc.stderr.read().decode(errors="replace")
        proc.wait()
    if proc.returncode != 0:
        raise ValueError(f"{video}: ffmpeg could not decode frames: {err.strip()[:300]}")


def detect_video(video: str | Path, fps: float, params: MediapipeParams):
    """Detections per frame at ``fps`` for one video, and its :class:`VideoInfo`."""
    info = probe(video)
    with FrameDetector(params) as det:
        frames = [det(rgb) for rgb in read_frames(video, fps, info)]
    if not frames:
        raise ValueError(f"{video}: no frames decoded")
    return frames, info
