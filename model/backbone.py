"""ResNet backbones (He et al. 2016) with torchvision's module names.

The names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0`` ...) match
``torchvision.models.resnet50`` so a user's ImageNet checkpoint loads with
:func:`load_backbone_weights` (torchvision is not a dependency: no weights can be downloaded
here). The classifier ``fc`` is not built: TriBERT uses the 2048 x 7 x 7 feature map (paper
Fig. 2), and a checkpoint's ``fc.*`` keys are ignored.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from model import checkpoint


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a residual (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, first_dilation: int | None = None):
        super().__init__()
        d0 = dilation if first_dilation is None else first_dilation
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=d0, dilation=d0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, residual (ResNet-50; torchvision v1.5 puts
    the stride on the 3x3 convolution)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, first_dilation: int | None = None):
        super().__init__()
        d0 = dilation if first_dilation is None else first_dilation
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=d0, dilation=d0, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet trunk without its classifier: (B, 3, H, W) -> (B, out_channels, H/s, W/s) with
    s = 32 (or 16 when ``dilate_last``: the last stage keeps its resolution and dilates by 2,
    as in Sound-of-Pixels' ResnetDilated with dilate_scale 16)."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, ...],
                 widths: tuple[int, ...] = (64, 128, 256, 512), stem: int = 64,
                 dilate_last: bool = False):
        super().__init__()
        assert len(layers) == len(widths) == 4
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = stem
        self.layer1 = self._stage(block, widths[0], layers[0], 1, 1)
        self.layer2 = self._stage(block, widths[1], layers[1], 2, 1)
        self.layer3 = self._stage(block, widths[2], layers[2], 2, 1)
        self.layer4 = self._stage(block, widths[3], layers[3], 1 if dilate_last else 2,
                                  2 if dilate_last else 1)
        self.out_channels = widths[3] * block.expansion
        self.stride = 16 if dilate_last else 32
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _stage(self, block, planes: int, blocks: int, stride: int, dilation: int):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        # in a dilated stage the formerly strided 3x3 convolution keeps dilation 1 (as SoP does)
        mods = [block(self.inplanes, planes, stride, dilation, downsample,
                      first_dilation=max(1, dilation // 2))]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes, 1, dilation) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        assert C == 3, f"expected RGB frames, got {C} channels"
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x  # (B, out_channels, H/stride, W/stride)


def make_backbone(name: str, dilate_last: bool = False) -> ResNet:
    """``resnet50`` (TriBERT, Fig. 2), ``resnet18`` (Sound-of-Pixels), ``resnet_tiny`` (a
    one-block-per-stage ResNet with widths 16..128 for the CPU preset)."""
    if name == "resnet50":
        return ResNet(Bottleneck, (3, 4, 6, 3), dilate_last=dilate_last)
    if name == "resnet18":
        return ResNet(BasicBlock, (2, 2, 2, 2), dilate_last=dilate_last)
    if name == "resnet_tiny":
        return ResNet(BasicBlock, (1, 1, 1, 1), (16, 32, 64, 128), stem=16,
                      dilate_last=dilate_last)
    raise ValueError(f"unknown backbone {name!r} (resnet50, resnet18, resnet_tiny)")


def load_backbone_weights(backbone: ResNet, path: str | Path) -> None:
    """Load a torchvision-format state_dict (optionally wrapped as {"state_dict": ...}) into
    ``backbone``: every backbone key must be present with its shape; ``fc.*`` is ignored."""
    path = Path(path)
    state = checkpoint.read(path, "backbone weights")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict mapping, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path}: not a matching torchvision ResNet state_dict: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise ValueError(f"{path}: shape mismatch for {bad[:5]} "
                         f"(e.g. {tuple(state[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})")
    backbone.load_state_dict(state, strict=True)
