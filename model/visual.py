"""Visual tokens: the weakly-supervised visual segmentation network of paper Fig. 2 (section 3.2,
"Visual Representations").

Frames -> ResNet -> 3x3 conv -> spatial feature V_e (D x h x w) -> decoupled spatial attention
(Zheng et al.): an expansive branch S_E (eq. 1-2) and a discriminative branch S_D give class maps
A_m = S_E * S_D; their spatial average scores the classes, and the maps of the top-2 classes pool
V_e into 2 tokens per frame.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.backbone import ResNet
from model.layout import to_format

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def prepare_frames(frames: torch.Tensor) -> torch.Tensor:
    """Frames as the data pipeline stores them, uint8 (..., H, W, 3), -> ImageNet-normalised
    float (..., 3, H, W) (channels-last in memory, which the backbone wants). Float frames
    (..., 3, H, W) are taken as already normalised."""
    if frames.dtype != torch.uint8:
        assert frames.shape[-3] == 3, f"float frames: expected (..., 3, H, W), got {tuple(frames.shape)}"
        return frames
    assert frames.shape[-1] == 3, f"uint8 frames: expected (..., H, W, 3), got {tuple(frames.shape)}"
    mean = frames.new_tensor(IMAGENET_MEAN, dtype=torch.float32) * 255
    std = frames.new_tensor(IMAGENET_STD, dtype=torch.float32) * 255
    return ((frames.float() - mean) / std).movedim(-1, -3)


class DecoupledSpatialAttention(nn.Module):
    """Class attention maps A_m = S_E * S_D (paper eq. 1-2).

    Expansive detector: dropout, 1x1 conv (D -> C), dropout, ReLU (F in eq. 1), and a spatial
    normalisation (eq. 2: each class map sums to 1 over the h x w positions). Discriminative
    detector: a 1x1 conv (D -> C).

    Shape: (N, D, h, w) -> maps (N, C, h, w), class scores (N, C) by spatial average.
    """

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.2, eps: float = 1e-6):
        super().__init__()
        self.expansive = nn.Sequential(nn.Dropout(dropout), nn.Conv2d(dim, num_classes, 1),
                                       nn.Dropout(dropout), nn.ReLU())
        self.discriminative = nn.Conv2d(dim, num_classes, 1)
        self.eps = eps

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        N, D, h, w = v.shape
        lam = self.expansive(v)                                        # (N, C, h, w)
        s_e = lam / (lam.sum(dim=(2, 3), keepdim=True) + self.eps)     # eq. 2
        s_d = self.discriminative(v)                                   # (N, C, h, w)
        a_m = s_e * s_d
        return a_m, a_m.mean(dim=(2, 3))


class VisualTokenizer(nn.Module):
    """Frames of one or more videos -> ``tokens_per_frame`` visual tokens per frame.

    Args:
        backbone: a :class:`~model.backbone.ResNet` trunk.
        dim: visual hidden size (the 3x3 conv's output, 1024 in the paper).
        num_classes: C, the number of class maps.
        tokens_per_frame: how many top-scoring class maps pool a token (2 in the paper).
        image_size: frames are resized to this side before the backbone (224 in the paper).

    Shape: frames (N, 3, H, W) -> tokens (N, tokens_per_frame, dim), class scores (N, C).
    All frames of a batch go through the backbone as one batch (channels-last).
    """

    def __init__(self, backbone: ResNet, dim: int, num_classes: int, tokens_per_frame: int = 2,
                 image_size: int = 224):
        super().__init__()
        self.backbone = backbone
        self.conv = nn.Conv2d(backbone.out_channels, dim, 3, padding=1)
        self.attention = DecoupledSpatialAttention(dim, num_classes)
        self.tokens_per_frame = tokens_per_frame
        self.image_size = image_size
        self.memory_format = torch.channels_last   # model.layout
        assert tokens_per_frame <= num_classes

    def features(self, frames: torch.Tensor):
        """frames (N, 3, H, W) -> V_e (N, D, h, w), the top ``tokens_per_frame`` class maps
        (N, K, h, w) with their class indices (N, K), and the class scores (N, C)."""
        N, C, H, W = frames.shape
        assert C == 3, f"frames: expected (N, 3, H, W), got {tuple(frames.shape)}"
        if (H, W) != (self.image_size, self.image_size):
            frames = F.interpolate(frames, size=(self.image_size, self.image_size),
                                   mode="bilinear", align_corners=False, antialias=True)
        frames = to_format(frames, self)
        v_e = self.conv(self.backbone(frames))                           # (N, D, h, w)
        a_m, scores = self.attention(v_e)                                # (N, C, h, w), (N, C)
        top = scores.detach().topk(self.tokens_per_frame, dim=1).indices  # (N, K)
        maps = torch.gather(a_m, 1, top[:, :, None, None].expand(-1, -1, *a_m.shape[2:]))
        return v_e, maps, top, scores

    def attention_maps(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The spatial attention maps that pool the tokens (supplement Fig. 2): frames
        (N, 3, H, W) normalised -> maps A_m (N, K, h, w) (signed: S_E * S_D) and class indices
        (N, K)."""
        _, maps, top, _ = self.features(frames)
        return maps, top

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_e, maps, _, scores = self.features(frames)
        # token k = spatial average of V_e weighted by the k-th best class map
        tokens = torch.einsum("nkhw,ndhw->nkd", maps, v_e) / (v_e.shape[2] * v_e.shape[3])
        return tokens, scores                                            # (N, K, D), (N, C)
