"""pipeline.train.memory_format: the measured choice keeps the faster layout per network and
leaves the model untouched; the choice is cached per machine and configuration, and timings
from busy cores are not kept."""
from __future__ import annotations

import json
import time

import pytest
import torch

from model import layout
from model.tribert import TriBERT
from model_inputs import TINY
from pipeline.train import memory_format


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

    choice, steady = memory_format.choose(tiny_model, step, repeats=1)
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

    assert memory_format.remember("k1", measure, path) == ({"unet": "channels_last"}, False)
    assert memory_format.remember("k1", measure, path) == ({"unet": "channels_last"}, True)
    assert len(measured) == 1
    assert memory_format.remember("k2", measure, path)[1] is False      # another configuration
    path.write_text("{not json")                                  # a broken cache: measured again
    assert memory_format.remember("k1", measure, path) == ({"unet": "channels_last"}, False)
    assert json.loads(path.read_text()) == {"k1": {"unet": "channels_last"}}
    # timings taken on busy cores are used for the run but not kept
    assert memory_format.remember("k3", lambda: measure(False), path) == ({"unet": "channels_last"},
                                                                    False)
    assert "k3" not in json.loads(path.read_text())


def test_unsteady_timings_are_reported_as_such(monkeypatch):
    """Runs whose median is far above their fastest (a busy machine) are not steady. The runs
    advance a fake clock, so the test does not depend on how busy the machine running it is."""
    clock = [0.0]
    monkeypatch.setattr(memory_format.time, "perf_counter", lambda: clock[0])

    def runs(*durations):
        times = iter(durations)

        def run():
            clock[0] += next(times)
        return run

    best, steady = memory_format._timed(runs(0.0, 0.1, 0.5, 0.5), 3)   # a warm-up, then 3
    assert best == pytest.approx(0.1) and not steady
    assert memory_format._timed(runs(0.0, 0.1, 0.1, 0.1), 3) == (pytest.approx(0.1), True)


def test_the_cache_key_follows_the_configuration_and_the_batch(tiny_model):
    other = TriBERT(**{**TINY, "unet_channels": 8})
    key = memory_format.cache_key(tiny_model, 8)
    assert key == memory_format.cache_key(tiny_model, 8)
    assert key != memory_format.cache_key(tiny_model, 4)
    assert key != memory_format.cache_key(other, 8)
