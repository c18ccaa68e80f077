"""Fixtures of the pose tests."""
from __future__ import annotations

import numpy as np
import pytest

from pose_motion import boxes_of, keypoint_sequence


@pytest.fixture(scope="session")
def motion_sequences():
    """Train and val :class:`Sequence` lists over 4 classes (chance accuracy 25%)."""
    from pipeline.classes import CLASSES, multi_hot
    from pipeline.pose.stgcn import to_input
    from pipeline.pose.stgcn_train import Sequence

    rng = np.random.default_rng(0)
    classes = (0, 3, 6, 9)

    def make(n, tag):
        out = []
        for c in classes:
            for k in range(n):
                kp = keypoint_sequence(c, 16, rng)
                x = to_input(kp, boxes_of(kp))
                out.append(Sequence(f"{tag}{c:02d}{k:06d}", x, np.asarray(multi_hot([CLASSES[c]]), np.float32)))
        return out

    return make(6, "t"), make(3, "v")
