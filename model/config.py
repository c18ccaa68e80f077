"""The ``model:`` section of params.yaml: a preset plus optional overrides.

``preset: paper`` gives exactly the sizes of the paper (section 3.2, "Implementation Details")
and of the official code (REFERENCE.md, "Official TriBERT model"); ``preset: tiny`` gives a model
small enough to train on 2 CPU cores in minutes. Every size field defaults to ``None`` (= the
preset's value) so ``dvc exp run -S model.hidden_visual=256`` overrides one size of a preset, and
a bad value fails at load time with its key (``model.heads: expected a value >= 1, got 0``).

This module must not import torch: the data stages validate every section without it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Optional

from pipeline.params import ParamsError, opt, rng

Backbone = Literal["resnet50", "resnet18", "resnet_tiny"]

# The sizes each preset fixes. Keys are the ModelParams size fields below.
PRESETS: dict[str, dict] = {
    "paper": dict(
        backbone="resnet50",           # Fig. 2: ResNet-50 -> 2048 x 7 x 7
        image_size=224,
        hidden_visual=1024,            # "hidden state size of 1024 and 512" (3.2)
        hidden_pose=1024,
        hidden_audio=512,
        hidden_coattention=512,        # official bi_hidden_size; also the pooler width
        heads=8,
        ffn=1024,
        layers=6,                      # 6 co-attention + 6 self-attention layers, interleaved
        dropout=0.1,
        vggish_channels=(64, 128, 256, 256, 512, 512, 512),
        unet_depth=7,                  # "7 convolutions and 7 de-convolutions" (3.2.1)
        unet_channels=64,
        unet_max_channels=512,
        sop_channels=32,               # Sound-of-Pixels K
    ),
    "tiny": dict(
        backbone="resnet_tiny",
        image_size=112,
        hidden_visual=64,
        hidden_pose=64,
        hidden_audio=64,
        hidden_coattention=64,
        heads=4,
        ffn=128,
        layers=2,
        dropout=0.1,
        vggish_channels=(8, 16, 32, 32, 64, 64, 64),
        unet_depth=5,
        unet_channels=16,
        unet_max_channels=128,
        sop_channels=16,
    ),
}




@dataclass(frozen=True)
class ModelParams:
    """Which model to build and its sizes. ``resolved()`` gives the constructor arguments."""

    arch: Literal["tribert", "sop"] = "tribert"   # sop = the Sound-of-Pixels baseline (Table 1)
    preset: Literal["paper", "tiny"] = "tiny"
    # sizes (None = the preset's value)
    backbone: Optional[Backbone] = None
    image_size: Optional[int] = opt(32, 448, "frames are resized to this side inside the model")
    hidden_visual: Optional[int] = opt(8, 4096)
    hidden_pose: Optional[int] = opt(8, 4096)
    hidden_audio: Optional[int] = opt(8, 4096)
    hidden_coattention: Optional[int] = opt(8, 4096)
    heads: Optional[int] = opt(1, 64)
    ffn: Optional[int] = opt(8, 16384)
    layers: Optional[int] = opt(1, 24, "co-attention layers (and as many self-attention layers)")
    dropout: Optional[float] = opt(0.0, 0.9)
    vggish_channels: Optional[tuple[int, ...]] = None
    unet_depth: Optional[int] = opt(2, 8)
    unet_channels: Optional[int] = opt(4, 256)
    unet_max_channels: Optional[int] = opt(4, 2048)
    sop_channels: Optional[int] = opt(1, 256)
    # the Sound-of-Pixels baseline with TriBERT's weak labels: a linear instrument classifier on
    # its frames network (trained by train.loss.visual); off = the original SoP
    sop_classifier: bool = False
    # behaviour (the same in both presets)
    coattention: Literal["concat_features", "union_tokens"] = "concat_features"
    fusion: Literal["concat", "multiply"] = "concat"
    mask_rate: float = rng(0.15, 0.0, 0.9, doc="share of visual/pose tokens masked in training")
    # supplement Table 1: a stream whose tokens are all the mask token, in training and inference
    erase: Literal["none", "visual", "pose"] = "none"
    temporal_pos_emb: bool = False   # learned per-frame position embeddings (paper: future work)
    # the separation U-Net (both off = the paper's; docs/experiments.md measures them)
    film: bool = False        # the fused feature also modulates every decoder level (FiLM)
    input_norm: bool = False  # BatchNorm over the input log spectrogram (Sound-of-Pixels' bn0)
    synthesizer: int = rng(0, 0, 1024, doc="K > 0: SoP's synthesizer head instead of the "
                                         "bottleneck fusion (the decoder runs once per mixture)")
    num_classes: int = rng(21, 1, 1000)
    frames: int = rng(3, 1, 64)      # sampled frames per clip
    persons: int = rng(2, 1, 8)      # pose tokens per frame (= visual tokens per frame)
    pose_channels: int = rng(256, 1, 4096)   # ST-GCN feature channels per joint
    pose_joints: int = rng(68, 1, 256)
    backbone_weights: str = ""       # a torchvision ResNet state_dict file ("" = random init)
    vggish_weights: str = ""         # a VGG-style audio network state_dict file

    def __post_init__(self):
        r = self.resolved()
        if len(r["vggish_channels"]) != 7 or min(r["vggish_channels"]) < 1:
            raise ParamsError(f"vggish_channels: expected 7 positive channel counts, "
                              f"got {r['vggish_channels']!r}")
        for name in ("hidden_visual", "hidden_pose", "hidden_audio", "hidden_coattention"):
            if r[name] % r["heads"]:
                raise ParamsError(f"{name}: {r[name]} is not a multiple of heads={r['heads']}")
        if self.coattention == "concat_features" and r["hidden_coattention"] % (2 * r["heads"]):
            raise ParamsError(f"hidden_coattention: concat_features splits it between two "
                              f"streams: {r['hidden_coattention']} is not a multiple of "
                              f"2 * heads = {2 * r['heads']}")
        if 256 % (2 ** r["unet_depth"]):
            raise ParamsError(f"unet_depth: 256 bins are not divisible by 2^{r['unet_depth']}")

    def resolved(self) -> dict:
        """The preset's sizes with this section's overrides applied (plain data)."""
        out = dict(PRESETS[self.preset])
        for key in out:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["vggish_channels"] = tuple(out["vggish_channels"])
        for f in dataclasses.fields(self):
            if f.name not in out and f.name not in ("preset",):
                out[f.name] = getattr(self, f.name)
        return out
