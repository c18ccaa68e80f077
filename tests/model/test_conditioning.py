"""The separation masks depend on the conditioning (issue: "Separation that works", 1.4): on a
fixed batch, changing one source's frames and pose changes that source's mask logits and
leaves every other source's unchanged; swapping a mixture's videos swaps its masks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.data.spectrogram import CLIP_SAMPLES
from pipeline.separation.infer import separation_estimates, sources_independent, swap_videos
from model.sop import SoundOfPixels
from model.tribert import TriBERT
from model.motion import PoseMotion
from model.unet import FiLM, MotionFiLM
from model_inputs import TINY, make_batch

VARIANTS = {"paper": {}, "film": {"film": True, "input_norm": True},
            "synthesizer": {"synthesizer": 4, "input_norm": True},
            "motion": {"synthesizer": 4, "input_norm": True, "motion": 8},
            "motion_per_source": {"film": True, "input_norm": True, "motion": 8}}
BANDS = {"synthesizer": 4, "input_norm": True, "motion": 8, "motion_bands": 4}


def _trained_film(model: TriBERT) -> TriBERT:
    """FiLM layers and the motion branch's output start at zero (no effect); give them weights
    as training would."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (FiLM, MotionFiLM)):
            with torch.no_grad():
                m.proj.weight.copy_(torch.randn(m.proj.weight.shape, generator=g) * 0.5)
        if isinstance(m, PoseMotion) and m.out is not None:
            with torch.no_grad():
                m.out.weight.copy_(torch.randn(m.out.weight.shape, generator=g) * 0.5)
    return model


@pytest.fixture(params=sorted(VARIANTS))
def model(request):
    torch.manual_seed(0)
    return _trained_film(TriBERT(**{**TINY, **VARIANTS[request.param]})).eval()


@torch.no_grad()
def test_changing_one_sources_video_changes_only_its_mask(model):
    batch = make_batch()
    before = model(batch)["mask_logits"]
    changed = {k: v.clone() for k, v in batch.items()}
    g = torch.Generator().manual_seed(7)
    changed["frames"][0, 1] = torch.randn(changed["frames"][0, 1].shape, generator=g)
    changed["pose"][0, 1] = torch.randn(changed["pose"][0, 1].shape, generator=g)
    changed["trajectory"][0, 1] = changed["trajectory"][0, 1].roll(3, dims=0)
    after = model(changed)["mask_logits"]
    moved = (after[0, 1] - before[0, 1]).abs().mean()
    assert moved > 1e-3 * before[0, 1].abs().mean(), "source (0, 1)'s mask ignores its video"
    torch.testing.assert_close(after[0, 0], before[0, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(after[1], before[1], rtol=0, atol=1e-6)


@torch.no_grad()
def test_changing_only_the_pose_moves_the_mask(model):
    batch = make_batch()
    before = model(batch)["mask_logits"]
    changed = dict(batch, pose=batch["pose"].clone())
    changed["pose"][1, 0] += 3.0
    after = model(changed)["mask_logits"]
    assert (after[1, 0] - before[1, 0]).abs().max() > 1e-4
    torch.testing.assert_close(after[1, 1], before[1, 1], rtol=0, atol=1e-6)


@torch.no_grad()
def test_swapping_the_videos_swaps_the_masks(model):
    batch = make_batch()
    plain = model(batch)["mask_logits"]
    swapped = model(swap_videos(batch))["mask_logits"]
    torch.testing.assert_close(swapped, plain.flip(1), rtol=0, atol=1e-5)
    assert (plain[:, 0] - plain[:, 1]).abs().max() > 1e-4   # the two masks differ at all


def test_film_starts_as_the_identity_and_then_modulates():
    film = FiLM(6, 4)
    x, v = torch.randn(3, 4, 5, 5), torch.randn(3, 6)
    torch.testing.assert_close(film(x, v), x)
    with torch.no_grad():
        film.proj.weight.fill_(0.1)
    assert not torch.allclose(film(x, v), x)


def _sop() -> SoundOfPixels:
    torch.manual_seed(0)
    return SoundOfPixels(backbone="resnet_tiny", image_size=64, sop_channels=4, unet_depth=3,
                         unet_channels=4, unet_max_channels=8, num_classes=5,
                         sop_classifier=True).eval()


@torch.no_grad()
def test_with_motion_bands_the_sources_are_not_independent_but_swapping_still_swaps():
    """model.motion_bands sets each source's band term against the others': changing source
    (0, 1)'s video moves source (0, 0)'s mask too, the model says so (the swap variant then
    takes a second pass), and swapping the videos still swaps the masks."""
    torch.manual_seed(0)
    model = _trained_film(TriBERT(**{**TINY, **BANDS})).eval()
    assert not sources_independent(model)
    batch = make_batch()
    before = model(batch)["mask_logits"]
    changed = dict(batch, trajectory=batch["trajectory"].clone())
    changed["trajectory"][0, 1] = changed["trajectory"][0, 1].roll(3, dims=0)
    after = model(changed)["mask_logits"]
    assert (after[0, 0] - before[0, 0]).abs().max() > 1e-4
    torch.testing.assert_close(after[1], before[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(model(swap_videos(batch))["mask_logits"], before.flip(1),
                               rtol=0, atol=1e-5)


@torch.no_grad()
def test_swapping_the_videos_swaps_the_baselines_masks():
    """Sound-of-Pixels declares ``sources_independent`` too: the claim, checked."""
    sop, batch = _sop(), make_batch()
    plain = sop(batch)["mask_logits"]
    swapped = sop(swap_videos(batch))["mask_logits"]
    torch.testing.assert_close(swapped, plain.flip(1), rtol=0, atol=1e-5)
    assert (plain[:, 0] - plain[:, 1]).abs().max() > 1e-4


def _dataset_batch(B=2, N=2, T=3, size=64, seed=0) -> dict:
    """A batch as the dataset gives it (uint8 frames, waveforms), without pose shards."""
    g = torch.Generator().manual_seed(seed)
    return {"frames": torch.randint(0, 256, (B, N, T, size, size, 3), generator=g,
                                    dtype=torch.uint8),
            "audio": 0.1 * torch.randn(B, N, CLIP_SAMPLES, generator=g)}


@pytest.mark.parametrize("arch", ["tribert", "sop"])
@torch.no_grad()
def test_the_swap_variant_without_a_second_pass_equals_the_second_pass(arch, monkeypatch):
    """separation_estimates takes the swapped estimates of a ``sources_independent`` model from
    its first pass in the other order; they equal those of a real forward pass on the batch
    with the videos swapped (the flag switched off), and differ from the unswapped ones."""
    torch.manual_seed(0)
    model = TriBERT(**TINY).eval() if arch == "tribert" else _sop()
    batch = _dataset_batch()
    assert sources_independent(model)
    _, _, fast, _ = separation_estimates(model, batch, torch.device("cpu"), 0.5,
                                         variants={"swap"})
    assert set(fast) == {"normalized", "swap", "model"}     # nothing else was inverted
    monkeypatch.setattr(type(model), "sources_independent", False)
    assert not sources_independent(model)
    _, _, slow, _ = separation_estimates(model, batch, torch.device("cpu"), 0.5)
    np.testing.assert_array_equal(fast["model"], slow["model"])
    err = np.abs(fast["swap"] - slow["swap"]).max()
    moved = np.abs(fast["swap"] - fast["model"]).max()   # a random model's masks differ little
    print(f"swap: |fast - second pass| {err:.3g}, |swap - model| {moved:.3g}")
    assert err <= 1e-6 and moved > 0 and err < 0.05 * moved


def test_a_model_in_training_mode_gets_a_real_second_pass():
    model = TriBERT(**TINY).train()
    assert not sources_independent(model)    # dropout and token masking differ per pass
    with pytest.raises(ValueError, match="unknown"):
        separation_estimates(model.eval(), _dataset_batch(), torch.device("cpu"), 0.5,
                             variants={"swapped"})


def _labels(B=2, N=2, C=5) -> torch.Tensor:
    y = torch.zeros(B, N, C)
    y[0, 0, 1] = y[0, 1, 3] = y[1, 0, 0] = y[1, 1, 4] = 1.0
    return y


@torch.no_grad()
def test_an_oracle_model_is_conditioned_on_the_labels_not_the_frames():
    """model.oracle: each source's mask follows its true class (the batch's ``label``), not its
    frames; the other source's mask stays; swapping the videos (labels included) swaps the
    masks; without labels the model refuses in one line."""
    torch.manual_seed(0)
    model = TriBERT(**{**TINY, **VARIANTS["synthesizer"], "oracle": True}).eval()
    batch = dict(make_batch(), label=_labels())
    before = model(batch)["mask_logits"]
    new_frames = dict(batch, frames=batch["frames"].clone())
    new_frames["frames"][0, 1] = torch.randn(new_frames["frames"][0, 1].shape)
    torch.testing.assert_close(model(new_frames)["mask_logits"], before, rtol=0, atol=1e-6)
    relabelled = dict(batch, label=batch["label"].clone())
    relabelled["label"][0, 1] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])
    after = model(relabelled)["mask_logits"]
    assert (after[0, 1] - before[0, 1]).abs().max() > 1e-4, "source (0, 1)'s mask ignores its class"
    torch.testing.assert_close(after[0, 0], before[0, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(after[1], before[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(model(swap_videos(batch))["mask_logits"], before.flip(1),
                               rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="model.oracle.*'label'"):
        model(make_batch())


def test_the_bin_classes_head_reads_the_synthesizer_maps_in_training_only():
    """model.bin_classes: in training the outputs hold class logits per bin (B, F, T, C) whose
    gradient reaches the decoder that makes the K maps; in eval none are made, and the masks
    are those of the same weights without the head."""
    torch.manual_seed(0)
    kwargs = {**TINY, **VARIANTS["motion"]}
    model = TriBERT(**kwargs, bin_classes=True)
    batch = make_batch()
    out = model.train()(batch)
    assert out["bin_logits"].shape == (2, 256, 256, TINY["num_classes"])
    out["bin_logits"].square().mean().backward()
    assert model.unet.ups[-1][-1].weight.grad.abs().sum() > 0
    model.eval()
    plain = TriBERT(**kwargs)
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith("bin_classes.")})
    with torch.no_grad():
        got = model(batch)
        assert "bin_logits" not in got
        torch.testing.assert_close(got["mask_logits"], plain.eval()(batch)["mask_logits"])
    with pytest.raises(ValueError, match="bin_classes needs synthesizer > 0"):
        TriBERT(**TINY, bin_classes=True)
