"""Memory format (NCHW or channels-last) of each convolutional network, chosen per CPU.

Which layout oneDNN runs fastest differs per network and per CPU: on this project's 2-core
AVX-512 Xeon the tiny preset's U-Net ran its training step in channels-last about 1.2x faster than
in NCHW, while on an AVX2 EPYC the paper U-Net was faster in NCHW and its ResNet-50 in
channels-last (issue 14; docs/experiments.md section 8). So no fixed default is right
everywhere: :mod:`pipeline.train.memory_format` measures the choice per machine; this module
only says which networks there are and puts each in the layout it is given.

Every network with convolutions carries a ``memory_format`` attribute that its forward applies
to its input, and after its first convolution. :func:`apply` sets the attribute and the
weights together: the two must agree, or oneDNN converts on every call.

A tensor with one channel (a spectrogram, a one-input-channel convolution's weight) is
contiguous in both layouts, so ``Tensor.contiguous(memory_format=...)`` leaves its NCHW strides
as they are and oneDNN then runs that convolution, and its backward, in NCHW: the tiny preset's
1 -> 8 channel VGGish convolution at 256 x 256 took 66 ms per training step that way against
about 17 ms with channels-last strides (docs/experiments.md section 17). Both conversions here
therefore use ``Tensor.to(memory_format=...)``, which re-strides such tensors. The layout changes
speed, not the function (the kernels differ, so figures agree to float rounding, not bit for bit).
"""
from __future__ import annotations


import torch
from torch import nn

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
NAMES = {v: k for k, v in FORMATS.items()}
CHOICES = ("auto", *FORMATS)


def networks(model: nn.Module) -> dict[str, nn.Module]:
    """The model's convolutional networks by module name: every submodule that carries a
    ``memory_format`` attribute (outermost first; nested ones are left to their owner)."""
    found: dict[str, nn.Module] = {}
    for name, m in model.named_modules():
        if hasattr(m, "memory_format") and not any(name.startswith(f + ".") for f in found):
            found[name] = m
    return found


def to_format(x: torch.Tensor, net: nn.Module) -> torch.Tensor:
    """``x`` in ``net``'s memory format (a no-op when it already is; a one-channel ``x`` is
    re-strided, see the module's docstring)."""
    return x.to(memory_format=net.memory_format)


def same_format(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``x`` in the layout of ``ref`` (an einsum, for one, returns NCHW whatever its inputs)."""
    cl = ref.is_contiguous(memory_format=torch.channels_last) and not ref.is_contiguous()
    return x.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


def apply(model: nn.Module, choice: dict[str, str]) -> None:
    """Set each named network's layout: its input conversion and its convolution weights."""
    nets = networks(model)
    for name, fmt_name in choice.items():
        if name not in nets:
            raise KeyError(f"no convolutional network {name!r} (have {sorted(nets)})")
        fmt = FORMATS[fmt_name]
        net = nets[name]
        net.memory_format = fmt
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.data = m.weight.data.to(memory_format=fmt)


def current(model: nn.Module) -> dict[str, str]:
    return {name: NAMES[net.memory_format] for name, net in networks(model).items()}


def uniform(model: nn.Module, fmt_name: str) -> dict[str, str]:
    return {name: fmt_name for name in networks(model)}
