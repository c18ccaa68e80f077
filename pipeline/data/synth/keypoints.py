"""Ground-truth joints -> AlphaPose JSON result records (COMMON.md "Data layout").

One record per performer per frame: ``image_id`` "<frame, 6 digits>.jpg", ``category_id`` 1,
``keypoints`` 68 x [x, y, score] in the Halpe-68 layout, ``box`` [x, y, w, h], ``score`` and
``idx`` (1 = left performer, 2 = right). Like a detector's output, the coordinates carry Gaussian
noise of ``jitter`` pixels, a ``dropout`` share of joints is reported with score 0, the scores
of the others are drawn from [0.75, 0.98] (hands [0.55, 0.9]) and the person score is the mean
joint score times a box confidence in [0.9, 1.0].
"""
from __future__ import annotations

import numpy as np

from pipeline.data.synth.skeleton import L_HAND, N_JOINTS

BOX_MARGIN = 0.08   # box padding, as a share of the joints' extent


def detection(frame: int, idx: int, joints: np.ndarray, size: int, jitter: float,
              dropout: float, rng: np.random.Generator) -> dict:
    """The AlphaPose record of one performer (``joints``: (68, 2) pixels) in one frame."""
    assert joints.shape == (N_JOINTS, 2), joints.shape
    noisy = joints + rng.normal(0.0, jitter, joints.shape) if jitter > 0 else joints.copy()
    scores = rng.uniform(0.75, 0.98, N_JOINTS)
    scores[L_HAND:] = rng.uniform(0.55, 0.9, N_JOINTS - L_HAND)
    scores[rng.random(N_JOINTS) < dropout] = 0.0
    lo, hi = joints.min(0), joints.max(0)
    pad = (hi - lo) * BOX_MARGIN
    lo, hi = np.clip(lo - pad, 0, size - 1), np.clip(hi + pad, 0, size - 1)
    kp = np.concatenate([np.round(noisy, 2), np.round(scores, 3)[:, None]], 1).reshape(-1)
    return {
        "image_id": f"{frame:06d}.jpg",
        "category_id": 1,
        "keypoints": [float(v) for v in kp],
        "score": round(float(scores.mean() * rng.uniform(0.9, 1.0)), 4),
        "box": [round(float(v), 2) for v in (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])],
        "idx": idx,
    }
