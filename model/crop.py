"""Crops of the playing area for a frames network (``model.sop_crop``): each clip's frames cut
to a square around its performers' arms and hands and resized to the network's side.

The rendered (and real) instruments are small objects in a whole frame (20-40 px of 224),
beside clutter and sometimes an instrument nobody plays, and a frames network conditioned on
the whole frame must find the played instrument itself; a person's box does not help, because
a standing performer fills the frame's height. The instrument is where the hands are: the
square covers every elbow, wrist and hand joint the keypoint stage found in the clip's frames
(Halpe-68 joints 7-10 and 26-67, score above ``MIN_SCORE``), widened by ``margin`` of its side
on each side and at least ``MIN_SIDE`` of the frame. A clip with no such joint keeps its whole
frame. One square per clip, so its frames stay aligned; docs/experiments.md section 26 measures
what it changes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

ARM_JOINTS = (7, 8, 9, 10) + tuple(range(26, 68))   # elbows, wrists, both hands (pipeline.pose.halpe)
MIN_SCORE = 0.3
MIN_SIDE = 0.35


def playing_square(keypoints: torch.Tensor, width: int, height: int, margin: float,
                   min_side: float = MIN_SIDE) -> torch.Tensor:
    """(M, T, P, 68, 3) keypoints (x, y in pixels of a ``width`` x ``height`` frame, score) ->
    (M, 3) squares (centre x, centre y, side) as fractions of the frame's width and height."""
    assert keypoints.dim() == 5 and keypoints.shape[-2:] == (68, 3), \
        f"keypoints: expected (M, T, P, 68, 3), got {tuple(keypoints.shape)}"
    k = keypoints[..., list(ARM_JOINTS), :].float().flatten(1, 3)         # (M, J, 3)
    found = k[..., 2] > MIN_SCORE
    x, y = k[..., 0] / width, k[..., 1] / height
    far = torch.tensor(4.0)
    x1 = torch.where(found, x, far).amin(dim=1)
    y1 = torch.where(found, y, far).amin(dim=1)
    x2 = torch.where(found, x, -far).amax(dim=1)
    y2 = torch.where(found, y, -far).amax(dim=1)
    side = (torch.maximum(x2 - x1, y2 - y1) * (1 + 2 * margin)).clamp(min=min_side)
    square = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, side], dim=1)
    whole = torch.tensor([0.5, 0.5, 1.0])
    return torch.where(found.any(dim=1)[:, None], square, whole)


def crop(x: torch.Tensor, square: torch.Tensor, size: int) -> torch.Tensor:
    """(M, T, C, H, W) float frames and (M, 3) squares -> (M, T, C, size, size), bilinear;
    outside the frame is 0 (the mean colour of ImageNet-normalised frames)."""
    M, T, C, H, W = x.shape
    cx, cy, side = square.to(x.dtype).unbind(dim=1)
    theta = x.new_zeros(M, 2, 3)
    theta[:, 0, 0] = side
    theta[:, 0, 2] = 2 * cx - 1
    theta[:, 1, 1] = side
    theta[:, 1, 2] = 2 * cy - 1
    grid = F.affine_grid(theta, [M, T * C, size, size], align_corners=False)
    out = F.grid_sample(x.reshape(M, T * C, H, W), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.reshape(M, T, C, size, size)


def playing_area(frames: torch.Tensor, keypoints: torch.Tensor, margin: float,
                 size: int) -> torch.Tensor:
    """Normalised frames (M, T, 3, H, W) -> their playing-area crops (M, T, 3, size, size)."""
    H, W = frames.shape[-2:]
    return crop(frames, playing_square(keypoints, W, H, margin), size)
