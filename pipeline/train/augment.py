"""Frame augmentation of a training batch (``train.augment``): each video of a mixture gets its
own random square crop (a share ``scale`` of the frame's area, resized back), horizontal flip
and brightness/contrast jitter, the same for all its frames, and its person boxes and keypoints
are moved with the crop and the flip so a box token still covers its person (and a
playing-area crop, model.crop, still finds the hands). The ST-GCN pose features and the
trajectories (``pose.trajectory``, person-normalised) are left as they are (they describe the
skeleton's motion, not where it is in the frame).

``train.augment_trajectory`` (separately) augments the trajectories themselves
(:func:`trajectories`): each person of each video gets a random scale, stretch, rotation and
shift, every joint a little noise, and a tenth of the joints are dropped for the whole window,
so that the pose-motion branch (model/motion.py) cannot tell a training video by its performer's
resting posture (docs/experiments.md section 62).

Draws come from torch's global generator, whose state every checkpoint stores, so a resumed run
augments exactly as an uninterrupted one. Never applied in validation, evaluation or inference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BOXES, KEYPOINTS, TRAJECTORY = "pose.boxes", "pose.keypoints", "pose.trajectory"


def draw(m: int, scale: tuple[float, float], jitter: float) -> dict[str, torch.Tensor]:
    """Per-video parameters: crop side and corner (fractions of the frame), flip, brightness
    and contrast factors."""
    side = torch.empty(m).uniform_(*scale).sqrt()
    return {"side": side, "x0": torch.rand(m) * (1 - side), "y0": torch.rand(m) * (1 - side),
            "flip": torch.rand(m) < 0.5,
            "brightness": torch.empty(m).uniform_(1 - jitter, 1 + jitter),
            "contrast": torch.empty(m).uniform_(1 - jitter, 1 + jitter)}


def frames(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """(M, T, H, W, 3) uint8 -> the same, cropped, resized (bilinear), flipped and jittered."""
    M, T, H, W, C = x.shape
    side, flip = p["side"], p["flip"]
    theta = torch.zeros(M, 2, 3)
    theta[:, 0, 0] = torch.where(flip, -side, side)
    theta[:, 0, 2] = 2 * p["x0"] + side - 1
    theta[:, 1, 1] = side
    theta[:, 1, 2] = 2 * p["y0"] + side - 1
    img = x.permute(0, 1, 4, 2, 3).reshape(M, T * C, H, W).float()
    grid = F.affine_grid(theta, [M, T * C, H, W], align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    img = ((img - mean) * p["contrast"].view(M, 1, 1, 1) + mean) * p["brightness"].view(M, 1, 1, 1)
    img = img.clamp(0, 255).round().to(torch.uint8)
    return img.reshape(M, T, C, H, W).permute(0, 1, 3, 4, 2).contiguous()


def boxes(b: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """(M, T, P, 5) boxes (x1, y1, x2, y2 as fractions of the frame, area) in the augmented
    frame; a zero box (an absent person) stays zero."""
    M = b.shape[0]
    side, x0, y0 = (p[k].view(M, 1, 1) for k in ("side", "x0", "y0"))
    x1, x2 = (b[..., 0] - x0) / side, (b[..., 2] - x0) / side
    y1, y2 = (b[..., 1] - y0) / side, (b[..., 3] - y0) / side
    flip = p["flip"].view(M, 1, 1)
    x1, x2 = torch.where(flip, 1 - x2, x1), torch.where(flip, 1 - x1, x2)
    out = torch.stack([t.clamp(0, 1) for t in (x1, y1, x2, y2)], dim=-1)
    area = (out[..., 2] - out[..., 0]) * (out[..., 3] - out[..., 1])
    out = torch.cat([out, area.unsqueeze(-1)], dim=-1)
    empty = (b == 0).all(dim=-1, keepdim=True)
    return torch.where(empty, torch.zeros_like(out), out)


def points(k: torch.Tensor, p: dict[str, torch.Tensor], width: int, height: int) -> torch.Tensor:
    """(M, ..., 3) keypoints (x, y in pixels of a ``width`` x ``height`` frame, score) in the
    augmented frame (a point may now lie outside it); a point with no score stays zero."""
    M = k.shape[0]
    shape = (M,) + (1,) * (k.dim() - 2)
    side, x0, y0 = (p[key].view(shape) for key in ("side", "x0", "y0"))
    x = (k[..., 0] / width - x0) / side
    y = (k[..., 1] / height - y0) / side
    x = torch.where(p["flip"].view(shape), 1 - x, x)
    out = torch.stack([x * width, y * height, k[..., 2]], dim=-1)
    return torch.where(k[..., 2:] > 0, out, torch.zeros_like(out))


def augment(batch: dict, scale: tuple[float, float] = (0.6, 1.0), jitter: float = 0.3) -> dict:
    """A copy of ``batch`` (MixDataset's: ``frames`` (B, N, T, H, W, 3) uint8, and ``pose.boxes``
    (B, N, T, P, 5) and ``pose.keypoints`` (B, N, T, P, 68, 3) when pose is attached) with every
    video augmented."""
    f = batch["frames"]
    B, N = f.shape[:2]
    p = draw(B * N, scale, jitter)
    out = dict(batch)
    out["frames"] = frames(f.reshape(B * N, *f.shape[2:]), p).reshape(f.shape)
    if BOXES in batch:
        b = batch[BOXES]
        out[BOXES] = boxes(b.reshape(B * N, *b.shape[2:]).float(), p).reshape(b.shape).to(b.dtype)
    if KEYPOINTS in batch:
        k = batch[KEYPOINTS]
        H, W = f.shape[3:5]
        out[KEYPOINTS] = points(k.reshape(B * N, *k.shape[2:]).float(), p, W, H).reshape(k.shape)
    return out


def trajectories(traj: torch.Tensor, scale: float = 0.2, stretch: float = 0.1,
                 rotation: float = 0.26, shift: float = 0.1, noise: float = 0.005,
                 drop: float = 0.1) -> torch.Tensor:
    """Person-normalised trajectories (..., W, P, V, 3) (x, y, score; a joint with score 0 is
    missing) -> the same with, per window and person, (x, y) scaled by exp(U(-scale, scale)),
    stretched by exp(U(-stretch, stretch)) along x and its inverse along y, rotated by
    U(-rotation, rotation) radians and shifted by U(-shift, shift) per axis; Gaussian noise of
    SD ``noise`` on every point; and each joint dropped (all zero) for the whole window with
    probability ``drop``. Missing joints stay all zero."""
    lead, (W, P, V, _) = traj.shape[:-4], traj.shape[-4:]
    x = traj.reshape(-1, W, P, V, 3).float()
    M = x.shape[0]

    def u(bound, *shape):
        return torch.empty(M, 1, P, *shape).uniform_(-bound, bound)

    s, a, th = u(scale, 1, 1).exp(), u(stretch, 1, 1).exp(), u(rotation, 1, 1)
    px, py = x[..., 0:1] * s * a, x[..., 1:2] * s / a
    c, sn = th.cos(), th.sin()
    xy = torch.cat([c * px - sn * py, sn * px + c * py], dim=-1) + u(shift, 1, 2)
    xy = xy + noise * torch.randn_like(xy)
    keep = ((x[..., 2:3] > 0) & (torch.rand(M, 1, P, V, 1) >= drop)).to(x.dtype)
    out = torch.cat([xy * keep, x[..., 2:3] * keep], dim=-1)
    return out.reshape(*lead, W, P, V, 3).to(traj.dtype)
