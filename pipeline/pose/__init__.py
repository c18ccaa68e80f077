"""Pose stream (paper Sec. 3.1, "Keypoint (pose) Representations"): Halpe-68 keypoints for up to
two performers per frame, an ST-GCN trained on them, and per-frame ST-GCN features in shards."""
