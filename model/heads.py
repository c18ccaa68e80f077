"""Classification heads, SOS poolers and the fused feature (paper 3.2.1, "Training Objective";
supplement Table 2 for the fusion choice)."""
from __future__ import annotations

import torch
from torch import nn


class PredictionTransform(nn.Module):
    """BERT's prediction-head transform: Linear, GELU, LayerNorm. Shape: (..., d) -> (..., d)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x):
        return self.norm(self.act(self.dense(x)))


class WSDDNHead(nn.Module):
    """Weakly-supervised classification over region tokens (WSDDN, Bilen & Vedaldi 2016; paper
    eq. 3-4): class logits softmaxed over classes, detection logits softmaxed over the valid
    tokens, multiplied, summed over tokens and clamped to [0, 1]. Invalid tokens (absent persons,
    masked-out tokens) get zero detection weight.

    Shape: tokens (B, L, d), valid (B, L) bool -> scores (B, C) in [0, 1].
    """

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.transform = PredictionTransform(dim)
        self.classify = nn.Linear(dim, num_classes)
        self.detect = nn.Linear(dim, num_classes)

    def forward(self, tokens, valid):
        B, L, _ = tokens.shape
        h = self.transform(tokens)
        cls = self.classify(h).softmax(dim=2)                              # eq. 3, (B, L, C)
        keep = valid[..., None]
        # a finite fill keeps a sample with no valid token at score 0 instead of NaN
        det = self.detect(h).masked_fill(~keep, -1e9).softmax(dim=1) * keep  # eq. 4, (B, L, C)
        return (cls * det).sum(dim=1).clamp(0.0, 1.0)                      # (B, C)


class AudioClassifier(nn.Module):
    """Multi-label audio classifier on the mean audio token (logits; apply a sigmoid, not the
    official softmax, since a mixture holds several instruments).

    Shape: tokens (B, L, d) -> logits (B, C).
    """

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.transform = PredictionTransform(dim)
        self.decoder = nn.Linear(dim, num_classes)

    def forward(self, tokens):
        return self.decoder(self.transform(tokens.mean(dim=1)))


class SpectrogramCritic(nn.Module):
    """An instrument classifier of a (warped) log magnitude spectrogram, for
    ``train.loss.separated`` (not the paper's; after Co-Separation, Gao & Grauman 2019: each
    separated spectrogram should sound like its own video's instrument). Four stride-2 3x3
    convolutions with GroupNorm (no running statistics: it behaves the same in train and eval
    mode), the mean over time, then a linear layer over the remaining frequency rows, so the
    register of what it hears stays in the feature.

    Shape: log magnitudes (M, 1, F, T) -> logits (M, C); F divisible by 16.
    """

    def __init__(self, width: int, num_classes: int, bins: int = 256):
        super().__init__()
        layers, c_in = [], 1
        for c_out in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                       nn.GroupNorm(4 if c_out % 4 == 0 else 1, c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.classify = nn.Linear(c_in * (bins // 16), num_classes)

    def forward(self, log_mag):
        h = self.features(log_mag).mean(dim=3)                             # (M, c, F / 16)
        return self.classify(h.flatten(1))


class SOSPooler(nn.Module):
    """The SOS token's final state -> Linear -> ReLU (BERT pooler). Shape: (B, L, d) -> (B, out)."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.dense = nn.Linear(dim, out)
        self.act = nn.ReLU()

    def forward(self, tokens):
        return self.act(self.dense(tokens[:, 0]))


def fuse(pooled: list[torch.Tensor], mode: str) -> torch.Tensor:
    """The audio-visual-pose feature guiding separation: sigmoid of the concatenated (or the
    element-wise product of the) pooled SOS features. Shape: 3 x (B, p) -> (B, 3p) or (B, p)."""
    if mode == "concat":
        return torch.sigmoid(torch.cat(pooled, dim=1))
    if mode == "multiply":
        return torch.sigmoid(pooled[0] * pooled[1] * pooled[2])
    raise ValueError(f"unknown fusion {mode!r}")
