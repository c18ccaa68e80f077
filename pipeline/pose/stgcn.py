"""ST-GCN (Yan et al., AAAI 2018) over the Halpe-68 graph: the pose encoder of TriBERT (paper
Sec. 3.1, "Keypoint (pose) Representations", which re-trains yysijie/st-gcn on MUSIC21).

Input (N, C=3 [x, y, score], T, V=68, M=2). Coordinates are normalised per person and video
(:func:`to_input`): centred on the median centre of the person's boxes over the video and
divided by the median box side, so a performer spans about [-0.5, 0.5] wherever and however
large they appear (the position in the frame reaches TriBERT through the box embedding; the
synthetic data has ~3 videos per class, too few to learn position invariance). A missing joint
(score 0) is all zeros in every channel and an absent person is all zeros. Network (REFERENCE.md "ST-GCN"):
data BatchNorm over V*C (persons folded into the batch), 10 blocks of
64, 64, 64, 64, 128 (stride 2), 128, 128, 256 (stride 2), 256, 256 channels, each = spatial graph conv (K=3 partition, A D^-1, learnable edge importance per block), BN,
ReLU, 9x1 temporal conv, BN, dropout, residual, ReLU. The classifier pools over time, joints
and the persons present (absent persons are masked out of the mean, unlike the official code)
and applies a 1x1 conv to the 21 classes (multi-label: BCE on the logits).

``width`` < 1 shrinks the first nine blocks for a cheaper network on small CPUs; the last block
always has 256 channels, so the pose feature keeps the paper's 256 x 68 per person. Absent
persons (no joint with a score) are not run through the network at all: their features are
zero and they take no part in the batch statistics.
"""
from __future__ import annotations


import numpy as np
import torch
from torch import nn

from pipeline.pose.halpe import LEFT_HAND, NUM_JOINTS, NUM_PERSONS, halpe_adjacency

BLOCKS = ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1))
FEATURE_CHANNELS = 256  # the last block's channels, whatever the width (paper: 2 x 256 x 68)
TEMPORAL_KERNEL = 9
STRIDE = 4  # total temporal stride of BLOCKS


def to_input(keypoints: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Keypoints (T, M, V, 3) and boxes (T, M, 4) in pixels -> network input (3, T, V, M)
    float32, person-normalised (module docstring); joints with score 0 are zero everywhere."""
    t_len, m, v, c = keypoints.shape
    assert (m, v, c) == (NUM_PERSONS, NUM_JOINTS, 3), keypoints.shape
    assert boxes.shape == (t_len, m, 4), boxes.shape
    seen = keypoints[..., 2] > 0
    out = np.zeros((t_len, m, v, 3), np.float32)
    for p in range(m):
        rows = seen[:, p].any(-1)
        if not rows.any():
            continue
        b = boxes[rows, p].astype(np.float64)
        centre = np.median((b[:, :2] + b[:, 2:]) / 2, axis=0)
        side = max(float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))), 1.0)
        out[:, p, :, :2] = (keypoints[:, p, :, :2] - centre) / side
        out[:, p, :, 2] = keypoints[:, p, :, 2]
    out[~seen] = 0.0
    return np.ascontiguousarray(out.transpose(3, 0, 2, 1))


HAND_JOINTS = slice(LEFT_HAND, NUM_JOINTS)   # both hands' 21 joints (26..67)


def drop_hands(x: np.ndarray) -> np.ndarray:
    """A copy of network input ``(..., 3, T, V, M)`` with the hand joints missing (zero, as a
    joint with score 0 is), for a network trained on body joints only (``stgcn.hands: false``)."""
    out = np.array(x, np.float32, copy=True)
    out[..., HAND_JOINTS, :] = 0.0
    return out


def present_persons(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, T, V, M) -> (N, M) bool: the person has a scored joint somewhere in the window."""
    return (x[:, 2] > 0).flatten(1, 2).any(1)


class GraphConv(nn.Module):
    """Spatial graph convolution: a 1x1 conv to K*C_out channels, then sum_k X_k A_k."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.k, self.c_out = k, c_out
        self.conv = nn.Conv2d(c_in, c_out * k, kernel_size=1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.k, self.c_out, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, a)


class Block(nn.Module):
    """One ST-GCN unit: graph conv, BN, ReLU, 9x1 temporal conv (stride), BN, dropout, residual."""

    def __init__(self, c_in: int, c_out: int, a: torch.Tensor, stride: int = 1, dropout: float = 0.0,
                 residual: bool = True):
        super().__init__()
        self.register_buffer("a", a.clone())
        self.importance = nn.Parameter(torch.ones_like(a))  # learnable edge importance
        self.gcn = GraphConv(c_in, c_out, a.shape[0])
        pad = (TEMPORAL_KERNEL - 1) // 2
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, (TEMPORAL_KERNEL, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(c_out), nn.Dropout(dropout))
        if not residual:
            self.res = None
        elif c_in == c_out and stride == 1:
            self.res = nn.Identity()
        else:
            self.res = nn.Sequential(nn.Conv2d(c_in, c_out, 1, (stride, 1)), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x, self.a * self.importance))
        if self.res is not None:
            y = y + self.res(x)
        return self.relu(y)


class STGCN(nn.Module):
    """The 10-block ST-GCN; ``features`` gives (N, C_last, T/4, V, M), ``forward`` the logits."""

    def __init__(self, num_classes: int = 21, in_channels: int = 3, width: float = 1.0,
                 dropout: float = 0.0):
        super().__init__()
        self.config = {"num_classes": num_classes, "in_channels": in_channels, "width": width,
                       "dropout": dropout}
        self.hands = True   # inputs hold the hand joints; False: body only (drop_hands)
        a = torch.from_numpy(halpe_adjacency())
        self.data_bn = nn.BatchNorm1d(in_channels * NUM_JOINTS)
        blocks, c_in = [], in_channels
        for i, (c, stride) in enumerate(BLOCKS):
            c_out = FEATURE_CHANNELS if i == len(BLOCKS) - 1 else max(4, int(round(c * width)))
            blocks.append(Block(c_in, c_out, a, stride, dropout if i else 0.0, residual=i > 0))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = c_in
        self.fc = nn.Conv2d(c_in, num_classes, kernel_size=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, V, M) -> (N, 256, T/4, V, M), before the classifier; zero for absent persons."""
        n, c, t, v, m = x.shape
        assert v == NUM_JOINTS and t % STRIDE == 0, x.shape
        rows = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)      # person-major rows
        present = present_persons(x).reshape(n * m)
        out = x.new_zeros(n * m, self.out_channels, t // STRIDE, v)
        if present.any():
            y = self.data_bn(rows[present])
            y = y.view(-1, v, c, t).permute(0, 2, 3, 1)                 # (P, C, T, V)
            for block in self.blocks:
                y = block(y)
            assert y.shape[1:] == out.shape[1:], (y.shape, out.shape)
            out[present] = y
        return out.view(n, m, self.out_channels, t // STRIDE, v).permute(0, 2, 3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, V, M) -> class logits (N, num_classes), mean over the persons present."""
        present = present_persons(x).to(x.dtype)                      # (N, M)
        f = self.features(x).mean(dim=(2, 3))                        # (N, C, M)
        weights = present / present.sum(1, keepdim=True).clamp(min=1)
        pooled = (f * weights[:, None, :]).sum(-1)                   # (N, C)
        return self.fc(pooled[:, :, None, None]).flatten(1)


def save_checkpoint(model: STGCN, path, extra: dict) -> None:
    """Save constructor args + weights (+ ``extra`` plain data); loadable with weights_only=True."""
    from pipeline import atomic

    with atomic.atomic_path(path) as tmp:
        torch.save({"config": dict(model.config), "state_dict": model.state_dict(),
                    "hands": bool(model.hands), **extra}, tmp)


def load_checkpoint(path, map_location: str = "cpu") -> STGCN:
    """Rebuild the network from a checkpoint written by :func:`save_checkpoint` (eval mode)."""
    from model.readfile import read

    ckpt = read(path, "ST-GCN checkpoint", map_location)   # one-line ValueError naming the file
    try:
        model = STGCN(**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        model.hands = bool(ckpt.get("hands", True))   # trained on the hand joints (stgcn.hands)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ValueError(f"{path}: not a usable ST-GCN checkpoint: {why}") from None
    return model.eval()
