"""The model presets: the sizes of each network, as plain data (no torch, no pydantic).

``paper`` gives exactly the sizes of the paper (section 3.2, "Implementation Details") and of
the official code (REFERENCE.md, "Official TriBERT model"); ``tiny`` gives a model small enough
to train on 2 CPU cores in minutes. Keys are constructor arguments of
:class:`model.tribert.TriBERT` (and :class:`model.sop.SoundOfPixels`). The ``model:`` section of
params.yaml (:class:`pipeline.schema.ModelParams`) names a preset and overrides its sizes;
:func:`model.build.build_model` builds from the resolved section.

This module must not import torch: the data stages validate every section without it.
"""
from __future__ import annotations

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
