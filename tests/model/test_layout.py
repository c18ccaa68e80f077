"""model.layout: each convolutional network runs in the layout it is set to, the layout does not
change what the model computes, the measured choice keeps the faster one and leaves the model
untouched, and the choice is cached per machine and configuration."""
from __future__ import annotations

import json
import time

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


def test_choose_keeps_the_faster_layout_per_network_and_leaves_the_model_untouched(
        tiny_model, batch):
    """A step whose cost depends on the layout: slow when the U-Net runs channels-last, slow
    when the visual network runs NCHW. The model's weights, BatchNorm statistics and layout,
    and the global RNG, are as before."""
    tiny_model.train()
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    rng = torch.random.get_rng_state()
    calls = []

    def step(m):
        calls.append(layout.current(m))
        m(batch)["mask_logits"].sum().backward()
        fmts = layout.current(m)
        time.sleep(0.3 * (fmts["unet"] == "channels_last")
                   + 0.3 * (fmts["visual"] == "contiguous"))

    choice, steady = layout.choose(tiny_model, step, repeats=1)
    assert steady                          # one timed run per layout: its median is its minimum
    assert choice == {"visual": "channels_last", "audio_embedding.vggish": choice[
        "audio_embedding.vggish"], "unet": "contiguous"}
    assert len(calls) == 2 * (1 + 3)       # warm-up + 1 timed: NCHW, then each network once
    assert torch.equal(torch.random.get_rng_state(), rng)
    after = tiny_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in tiny_model.parameters())


def test_the_choice_is_measured_once_and_cached(tmp_path):
    path = tmp_path / "cache" / "memory_format.json"
    measured = []

    def measure(steady=True):
        measured.append(1)
        return {"unet": "channels_last"}, steady

    assert layout.remember("k1", measure, path) == ({"unet": "channels_last"}, False)
    assert layout.remember("k1", measure, path) == ({"unet": "channels_last"}, True)
    assert len(measured) == 1
    assert layout.remember("k2", measure, path)[1] is False      # another configuration
    path.write_text("{not json")                                  # a broken cache: measured again
    assert layout.remember("k1", measure, path) == ({"unet": "channels_last"}, False)
    assert json.loads(path.read_text()) == {"k1": {"unet": "channels_last"}}
    # timings taken on busy cores are used for the run but not kept
    assert layout.remember("k3", lambda: measure(False), path) == ({"unet": "channels_last"},
                                                                    False)
    assert "k3" not in json.loads(path.read_text())


def test_unsteady_timings_are_reported_as_such():
    """Runs whose median is far above their fastest (a busy machine) are not steady."""
    times = iter([0.0, 0.1, 0.5, 0.5])          # a warm-up, then 0.1, 0.5, 0.5

    def run():
        time.sleep(next(times))

    best, steady = layout._timed(run, 3)
    assert best == pytest.approx(0.1, abs=0.05) and not steady
    times = iter([0.0, 0.1, 0.1, 0.1])
    assert layout._timed(run, 3)[1]


def test_the_cache_key_follows_the_configuration_and_the_batch(tiny_model):
    other = TriBERT(**{**TINY, "unet_channels": 8})
    key = layout.cache_key(tiny_model, 8)
    assert key == layout.cache_key(tiny_model, 8)
    assert key != layout.cache_key(tiny_model, 4)
    assert key != layout.cache_key(other, 8)


def test_an_unknown_network_is_an_error(tiny_model):
    with pytest.raises(KeyError, match="no convolutional network 'decoder'"):
        layout.apply(tiny_model, {"decoder": "channels_last"})
