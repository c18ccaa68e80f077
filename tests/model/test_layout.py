"""model.layout: each convolutional network runs in the layout it is set to, and the layout does
not change what the model computes (the measured choice: tests/train/test_memory_format.py)."""
from __future__ import annotations

import pytest
import torch

from model import layout
from model.sop import SoundOfPixels
from model.tribert import TriBERT
from model_inputs import TINY

CL = torch.channels_last


def conv_inputs(model) -> dict[str, torch.Tensor]:
    """The input of every convolution in one forward, by module name."""
    seen, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_pre_hook(
                lambda m, a, name=name: seen.update({name: a[0]}) if name not in seen else None))
    return seen, hooks


def test_networks_are_found_for_both_architectures(tiny_model):
    assert set(layout.networks(tiny_model)) == {"visual", "audio_embedding.vggish", "unet"}
    sop = SoundOfPixels(backbone="resnet_tiny", image_size=64, sop_channels=4, unet_depth=3,
                        unet_channels=4, unet_max_channels=8, frames=3)
    assert set(layout.networks(sop)) == {"frames_net", "sound_net"}


@pytest.mark.parametrize("fmt", ["channels_last", "contiguous"])
def test_every_convolution_after_the_first_runs_in_the_chosen_layout(tiny_model, batch, fmt):
    """The U-Net and VGGish inputs are one-channel spectrograms, which are both layouts at once;
    the layout must still reach every later convolution (before the fix, setting channels-last
    on the U-Net left it running NCHW)."""
    layout.apply(tiny_model, layout.uniform(tiny_model, fmt))
    seen, hooks = conv_inputs(tiny_model)
    tiny_model.eval()
    with torch.no_grad():
        tiny_model(batch)
    for h in hooks:
        h.remove()
    checked = 0
    for name, x in seen.items():
        weight = tiny_model.get_submodule(name).weight
        assert weight.is_contiguous(memory_format=layout.FORMATS[fmt]), name
        if x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1:   # unambiguous activations only
            assert x.is_contiguous(memory_format=layout.FORMATS[fmt]), (name, x.stride())
            checked += 1
    assert any(n.startswith("unet.ups") for n in seen) and checked > 10


def test_every_convolution_outputs_the_chosen_layout(tiny_model, batch):
    """Including the first ones, whose input (a spectrogram) and weight have one channel:
    ``Tensor.contiguous`` leaves such tensors NCHW-strided and oneDNN then ran the VGGish's
    first convolution, forward and backward, in NCHW (66 against 17 ms of the tiny step)."""
    layout.apply(tiny_model, layout.uniform(tiny_model, "channels_last"))
    outs, hooks = {}, []
    for name, m in tiny_model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(
                lambda m, a, y, name=name: outs.setdefault(name, y)))
    tiny_model.eval()
    with torch.no_grad():
        tiny_model(batch)
    for h in hooks:
        h.remove()
    firsts = {"audio_embedding.vggish.conv1", "unet.downs.0.0"}
    assert firsts <= set(outs)
    for name, y in outs.items():
        if y.shape[1] > 1 and y.shape[2] * y.shape[3] > 1:
            assert y.is_contiguous(memory_format=CL) and not y.is_contiguous(), (name, y.stride())


def test_the_layout_does_not_change_the_outputs(batch):
    torch.manual_seed(0)
    model = TriBERT(**TINY).eval()
    with torch.no_grad():
        ref = model(batch)["mask_logits"]
        layout.apply(model, layout.uniform(model, "channels_last"))
        out = model(batch)["mask_logits"]
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_packages_are_nchw_whatever_the_layout(tiny_model):
    from model.checkpoint import package
    layout.apply(tiny_model, layout.uniform(tiny_model, "channels_last"))
    weight = package(tiny_model)["state_dict"]["unet.ups.0.2.weight"]
    assert weight.is_contiguous()


def test_an_unknown_network_is_an_error(tiny_model):
    with pytest.raises(KeyError, match="no convolutional network 'decoder'"):
        layout.apply(tiny_model, {"decoder": "channels_last"})
