"""Tiny TriBERT sizes and inputs shared by the model tests."""
from __future__ import annotations

import torch

TINY = dict(backbone="resnet_tiny", image_size=64, hidden_visual=16, hidden_pose=16,
            hidden_audio=8, hidden_coattention=16, heads=2, ffn=32, layers=1, dropout=0.1,
            vggish_channels=(4, 4, 4, 4, 4, 4, 4), unet_depth=3, unet_channels=4,
            unet_max_channels=8, num_classes=5, frames=3, persons=2, pose_channels=4,
            pose_joints=5)


def make_batch(B=2, N=2, T=3, P=2, size=64, pose_channels=4, joints=5, seed=0, W=12) -> dict:
    """Random inputs in the model's contract; some persons are absent; ``trajectory`` holds W
    frames of keypoints (x, y, score) with some joints missing (score 0)."""
    g = torch.Generator().manual_seed(seed)
    absent = torch.zeros(B, N, T, P, dtype=torch.bool)
    absent[0, 0, :, 1] = True          # the second person never appears in video (0, 0)
    absent[-1, -1, -1, 0] = True
    return {"frames": torch.randn(B, N, T, 3, size, size, generator=g),
            "pose": torch.randn(B, N, T, P, pose_channels, joints, generator=g),
            "boxes": torch.rand(B, N, T, P, 5, generator=g),
            "absent": absent,
            "log_mag_mix": torch.randn(B, 1, 256, 256, generator=g),
            "trajectory": trajectory(B, N, W, P, joints, g)}


def trajectory(B, N, W, P, joints, g) -> torch.Tensor:
    """Random keypoint trajectories (B, N, W, P, V, 3): x, y in about [-1, 1], score 0 (missing)
    for about a fifth of the joints, else in (0.2, 1]."""
    xy = torch.randn(B, N, W, P, joints, 2, generator=g) * 0.5
    score = torch.rand(B, N, W, P, joints, 1, generator=g)
    score = torch.where(score < 0.2, torch.zeros_like(score), score)
    return torch.cat([xy * (score > 0), score], dim=-1)
