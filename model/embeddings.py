"""Pose and audio token embeddings, the SOS tokens and token masking (paper section 3.2,
"Keypoint (pose) Representations", "Audio Representations", 3.2.1)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from model import checkpoint
from model.layout import to_format


class PoseEmbedding(nn.Module):
    """One token per person per frame: Linear over the flattened ST-GCN feature (256 x 68) plus
    Linear(5 -> dim) of the person box (x1, y1, x2, y2, area; normalised), then LayerNorm and
    dropout. Absent persons get a zero token (their values never reach the output; the encoder
    also masks them out of attention).

    Shape: feats (B, T, P, Cf, V), boxes (B, T, P, 5), absent (B, T, P) -> (B, T, P, dim).
    """

    def __init__(self, feat_channels: int, joints: int, dim: int, dropout: float = 0.1):
        super().__init__()
        self.feature = nn.Linear(feat_channels * joints, dim)
        self.box = nn.Linear(5, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def forward(self, feats, boxes, absent):
        B, T, P, Cf, V = feats.shape
        assert boxes.shape == (B, T, P, 5), f"boxes: expected {(B, T, P, 5)}, got {tuple(boxes.shape)}"
        assert absent.shape == (B, T, P), f"absent: expected {(B, T, P)}, got {tuple(absent.shape)}"
        x = self.norm(self.feature(feats.reshape(B, T, P, Cf * V)) + self.box(boxes))
        x = torch.where(absent[..., None], torch.zeros((), dtype=x.dtype), x)
        return self.dropout(x)                                          # (B, T, P, dim)


class VGGish(nn.Module):
    """The VGG-style audio network of the official code (REFERENCE.md): 7 x [3x3 conv, ReLU,
    2x2 max-pool] on the 1 x 256 x 256 log spectrogram; the 512 x 2 x 2 output is flattened to
    2048. Module names ``conv1``..``conv7`` match the official ``vggish`` so its weights load.

    Shape: (B, 1, 256, 256) -> (B, channels[-1] * 4).
    """

    def __init__(self, channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512, 512)):
        super().__init__()
        assert len(channels) == 7
        ins = (1,) + tuple(channels[:-1])
        for i, (cin, cout) in enumerate(zip(ins, channels), start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1))
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU(inplace=True)
        self.out_features = channels[-1] * 4
        self.memory_format = torch.contiguous_format   # model.layout

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        B, C, F, T = spec.shape
        assert (C, F, T) == (1, 256, 256), f"spectrogram: expected (B, 1, 256, 256), got {tuple(spec.shape)}"
        x = spec
        for i in range(1, 8):
            # after conv1 too: a one-channel input is both layouts at once (model.layout)
            x = self.pool(self.relu(getattr(self, f"conv{i}")(to_format(x, self))))
        return x.flatten(1)                                            # (B, out_features)

    def load(self, path: str | Path) -> None:
        """Load a state_dict with keys conv1..conv7 (any prefix up to ``vggish_feat.`` or
        ``vggish.`` is stripped, so an official TriBERT checkpoint's audio network loads)."""
        path = Path(path)
        state = checkpoint.read(path, "VGGish weights")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        own = self.state_dict()
        picked = {}
        for k, v in state.items():
            short = k.split("vggish_feat.")[-1].split("vggish.")[-1]
            if short in own:
                picked[short] = v
        missing = sorted(set(own) - set(picked))
        if missing:
            raise ValueError(f"{path}: VGGish weights lack {missing[:5]}")
        bad = [k for k in own if own[k].shape != picked[k].shape]
        if bad:
            raise ValueError(f"{path}: VGGish shape mismatch for {bad[:5]}")
        self.load_state_dict(picked, strict=True)


class AudioEmbedding(nn.Module):
    """VGGish feature of the mixture -> Linear -> LayerNorm -> dropout: one audio vector, which
    the model repeats into the audio token slots (paper 3.2.1, "Audio Classification"). The log
    magnitude (about -23 in silence to +5) is first standardised by a BatchNorm (as SoP's U-Net
    does; the official code feeds it raw, which leaves many ReLUs of the first layer dead).

    Shape: (B, 1, 256, 256) -> (B, dim).
    """

    def __init__(self, channels: tuple[int, ...], dim: int, dropout: float = 0.1):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1)
        self.vggish = VGGish(channels)
        self.project = nn.Linear(self.vggish.out_features, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def forward(self, spec):
        return self.dropout(self.norm(self.project(self.vggish(self.input_norm(spec)))))


class TokenMasking(nn.Module):
    """BERT-style token masking (paper 3.2.1, "Following [33], we apply masking to approximately
    15% of the input image regions"): in training, each valid token is replaced by a learned
    mask embedding with probability ``rate``. Unlike the official code (which zeroes a colour
    channel of a frame), the token itself is replaced.

    Shape: tokens (B, L, dim), valid (B, L) bool -> tokens (B, L, dim), masked (B, L) bool.
    """

    def __init__(self, dim: int, rate: float):
        super().__init__()
        self.rate = rate
        self.embedding = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, tokens, valid):
        B, L, D = tokens.shape
        if not self.training or self.rate == 0.0:
            return tokens, torch.zeros(B, L, dtype=torch.bool, device=tokens.device)
        masked = (torch.rand(B, L, device=tokens.device) < self.rate) & valid
        return torch.where(masked[..., None], self.embedding.to(tokens.dtype), tokens), masked
