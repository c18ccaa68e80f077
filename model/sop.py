"""The Sound-of-Pixels baseline (Zhao et al. 2018; hangzhaomit/Sound-of-Pixels) for the paper's
Table 1: a dilated ResNet-18 frames network -> K channels (spatial and temporal max-pool,
sigmoid), a U-Net7 audio network -> K channels, and a linear (inner-product) synthesizer. Same
forward interface as :class:`model.tribert.TriBERT` (pose inputs are ignored).

``sop_classifier``: SoP trained with the same weak labels as TriBERT's visual stream, a linear
classifier on the frames network's pooled backbone features (``visual_scores``, trained by the
visual loss term). The original frames network starts from ImageNet weights; from random
weights on the embedded data it memorises the training videos instead (docs/experiments.md).

``sop_crop``: the frames network sees each clip's playing area (a square around the
performers' arms and hands from the keypoint stage, widened by this margin: :mod:`model.crop`)
instead of the whole frame; the batch must then carry ``keypoints`` (B, N, T, P, 68, 3) in
pixels of the clip frame. None = whole frames, the original SoP."""
from __future__ import annotations

import torch
from torch import nn

from model.backbone import make_backbone
from model.crop import playing_area
from model.layout import to_format
from model.summary import format_table, param_table
from model.tribert import check_inputs
from model.unet import HarmonicStack, down, synthesize, up
from model.visual import prepare_frames


class FramesNet(nn.Module):
    """Frames (M, T, 3, H, W) -> K visual channels (M, K) in (0, 1)."""

    def __init__(self, backbone: str, channels: int, image_size: int,
                 crop: float | None = None):
        super().__init__()
        self.backbone = make_backbone(backbone, dilate_last=True)
        self.conv = nn.Conv2d(self.backbone.out_channels, channels, 3, padding=1)
        self.image_size, self.crop = image_size, crop
        self.memory_format = torch.channels_last   # model.layout

    def forward(self, frames, pooled: bool = False, keypoints=None):
        """(M, K) channels; with ``pooled`` also the backbone features pooled over space and
        frames (M, C). With crops, ``keypoints`` (M, T, P, 68, 3) locate each clip's hands."""
        frames = prepare_frames(frames)
        if self.crop is not None:
            if keypoints is None:
                raise ValueError("model.sop_crop: the frames network crops to the hands, so the "
                                 "batch needs keypoints (the pose shards attached)")
            frames = playing_area(frames, keypoints, self.crop, self.image_size)
        M, T, C, H, W = frames.shape
        x = frames.reshape(M * T, C, H, W)
        if (H, W) != (self.image_size, self.image_size):
            x = nn.functional.interpolate(x, size=(self.image_size,) * 2, mode="bilinear",
                                          align_corners=False, antialias=True)
        feats = self.backbone(to_format(x, self))
        x = self.conv(feats).amax(dim=(2, 3)).reshape(M, T, -1).amax(dim=1)   # (M, K)
        if not pooled:
            return torch.sigmoid(x)
        return torch.sigmoid(x), feats.mean(dim=(2, 3)).reshape(M, T, -1).amax(dim=1)


class AudioUNet(nn.Module):
    """SoP's U-Net (``unet7`` at depth 7): log spectrogram (B, 1, F, T) -> K channels
    (B, K, F, T). Input BatchNorm, 4x4 stride-2 downs, [upsample, 3x3 conv] ups (or transposed
    convolutions: ``up_mode``, :func:`model.unet.up`), plain skips; ``harmonics``: the
    normalised input stacked at those frequency ratios (:class:`model.unet.HarmonicStack`)."""

    def __init__(self, depth: int, channels: int, max_channels: int, out_channels: int,
                 up_mode: str = "upsample", harmonics=()):
        super().__init__()
        widths = [min(channels * 2 ** i, max_channels) for i in range(depth)]
        self.norm = nn.BatchNorm2d(1)
        self.stack = HarmonicStack(harmonics) if harmonics else None
        self.downs = nn.ModuleList(down(cin, cout, i == 0) for i, (cin, cout)
                                   in enumerate(zip([len(harmonics) or 1] + widths[:-1], widths)))
        ins = [widths[-1]] + [2 * w for w in reversed(widths[:-1])]
        outs = list(reversed(widths[:-1])) + [out_channels]
        self.ups = nn.ModuleList(up(cin, cout, i == depth - 1, up_mode)
                                 for i, (cin, cout) in enumerate(zip(ins, outs)))
        self.memory_format = torch.contiguous_format   # model.layout

    def forward(self, spec):
        x = self.norm(spec)
        if self.stack is not None:
            x = self.stack(x)
        skips = []
        for d in self.downs:
            # after the first level too: its one-channel input is both layouts (model.layout)
            x = to_format(d(x), self)
            skips.append(x)
        x = skips.pop()
        for u in self.ups[:-1]:
            x = torch.cat([u(x), skips.pop()], dim=1)
        return self.ups[-1](x)


class SoundOfPixels(nn.Module):
    """Sound-of-Pixels. Inputs as :class:`~model.tribert.TriBERT`; outputs ``mask_logits``
    (B, N, 256, 256) and ``fused`` (B, N, K) (the visual channels)."""

    # in eval mode each source's outputs depend only on the mixture and its own video
    # (pipeline.separation.infer.sources_independent; tests/model/test_conditioning.py)
    sources_independent = True

    def __init__(self, *, backbone: str = "resnet18", image_size: int = 224,
                 sop_channels: int = 32, unet_depth: int = 7, unet_channels: int = 64,
                 unet_max_channels: int = 512, frames: int = 3, persons: int = 2,
                 num_classes: int = 21, sop_classifier: bool = False,
                 sop_crop: float | None = None, unet_up: str = "upsample",
                 unet_harmonics: tuple = ()):
        init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        self.init_kwargs = init_kwargs
        self.frames, self.persons = frames, persons
        self.frames_net = FramesNet(backbone, sop_channels, image_size, sop_crop)
        self.sound_net = AudioUNet(unet_depth, unet_channels, unet_max_channels, sop_channels,
                                   unet_up, tuple(unet_harmonics))
        # linear synthesizer: mask = sum_k v_k * scale_k * a_k + bias
        self.scale = nn.Parameter(torch.ones(sop_channels))
        self.bias = nn.Parameter(torch.zeros(1))
        self.classifier = (nn.Linear(self.frames_net.backbone.out_channels, num_classes)
                           if sop_classifier else None)

    def forward(self, batch: dict) -> dict:
        B, N = check_inputs(batch, self.frames, self.persons)
        frames = batch["frames"].reshape(B * N, *batch["frames"].shape[2:])
        kp = batch.get("keypoints")
        kp = kp.reshape(B * N, *kp.shape[2:]) if kp is not None else None
        if self.classifier is None:
            visual = self.frames_net(frames, keypoints=kp)
        else:
            visual, pooled = self.frames_net(frames, pooled=True, keypoints=kp)
        visual = visual.reshape(B, N, -1)                                    # (B, N, K)
        audio = self.sound_net(batch["log_mag_mix"])                         # (B, K, F, T)
        mask_logits = synthesize(audio, visual * self.scale) + self.bias
        out = {"mask_logits": mask_logits, "fused": visual}
        if self.classifier is not None:   # class probabilities for the visual (BCE) loss
            out["visual_scores"] = torch.sigmoid(self.classifier(pooled)).reshape(B, N, -1)
        return out

    def __repr__(self):
        return format_table(type(self).__name__, param_table(self))
