"""The pose-motion branch (model/motion.py): its timing, its start as a no-op, and that each
source's time-varying term follows its own trajectory only."""
from __future__ import annotations

import pytest
import torch

from model.motion import (PITCH_LOW, SPEC_FRAMES_PER_SECOND, PitchComb, PoseMotion, band_terms,
                          frame_positions, sample_frames, warped_row)
from model.tribert import TriBERT
from model_inputs import TINY, make_batch

MOTION = {**TINY, "synthesizer": 4, "input_norm": True, "motion": 8}
BANDS = {**MOTION, "motion_bands": 6}
PER_SOURCE = {**TINY, "synthesizer": 0, "input_norm": True, "motion": 8}   # MotionFiLM
PITCH = {**MOTION, "motion_pitch": 12}
PITCH_PER_SOURCE = {**PER_SOURCE, "motion_pitch": 12}


def _with_output(model: TriBERT, seed: int = 1) -> TriBERT:
    """The branch's last layer starts at zero; give it weights as training would."""
    g = torch.Generator().manual_seed(seed)
    last = ([model.motion.out] if model.motion.out is not None
            else [f.proj for f in model.unet.motion_films])
    if model.motion.pitch_out is not None:
        last.append(model.motion.pitch_out)
    with torch.no_grad():
        for layer in last:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
    return model


def test_spectrogram_frames_sample_the_trajectory_at_their_own_time():
    """Spectrogram frame j (centred on sample 256 j at 11025 Hz) reads trajectory position
    j * fps * 256 / 11025: a step between trajectory frames 9 and 10 (at 8 fps: 1.25 s) shows
    from the frame after 1.125 s, ramps to 1.25 s, and is complete after it."""
    fps, W, T = 8.0, 48, 256
    x = torch.zeros(1, 1, W)
    x[..., 10:] = 1.0
    y = sample_frames(x, T, fps)[0, 0]
    t = torch.arange(T, dtype=torch.float64) / SPEC_FRAMES_PER_SECOND
    assert torch.all(y[t <= 9 / fps] == 0)
    assert torch.all(y[t >= 10 / fps] == 1)
    ramp = (t > 9 / fps) & (t < 10 / fps)
    assert ramp.sum() >= 4
    expected = (t[ramp] * fps - 9).float()
    torch.testing.assert_close(y[ramp], expected, rtol=0, atol=1e-5)
    # past the trajectory's last frame the last value is held, never read out of range
    lo, frac = frame_positions(400, fps)
    assert int(lo[-1]) > W - 1
    assert torch.all(sample_frames(x, 400, fps)[0, 0, 300:] == 1)


def test_the_frame_input_holds_positions_scores_and_motion():
    traj = torch.zeros(1, 3, 1, 2, 3)
    traj[0, :, 0, 0] = torch.tensor([[0.1, 0.2, 0.9], [0.3, 0.1, 0.8], [0.0, 0.0, 0.0]])
    traj[0, :, 0, 1] = torch.tensor([[0.5, 0.5, 0.7], [0.5, 0.6, 0.7], [0.4, 0.6, 0.7]])
    x = PoseMotion.frame_inputs(traj).reshape(3, 2, 5)
    torch.testing.assert_close(x[1, 0], torch.tensor([0.3, 0.1, 0.8, 0.2, -0.1]))
    # a joint missing in either frame has no motion there
    torch.testing.assert_close(x[2, 0], torch.zeros(5))
    torch.testing.assert_close(x[0, 1, 3:], torch.zeros(2))   # the first frame has no previous
    torch.testing.assert_close(x[2, 1, 3:], torch.tensor([-0.1, 0.0]))


@torch.no_grad()
@pytest.mark.parametrize("kwargs", [MOTION, BANDS, PER_SOURCE, PITCH, PITCH_PER_SOURCE],
                         ids=["motion", "motion_bands", "per_source_decoder", "motion_pitch",
                              "motion_pitch_per_source"])
def test_a_new_model_equals_the_model_without_the_branch(kwargs):
    torch.manual_seed(0)
    model = TriBERT(**kwargs).eval()
    batch = make_batch()
    with_traj = model(batch)["mask_logits"]
    without = model({k: v for k, v in batch.items() if k != "trajectory"})["mask_logits"]
    torch.testing.assert_close(with_traj, without, rtol=0, atol=0)


@torch.no_grad()
def test_each_source_follows_its_own_trajectory_over_time():
    """Changing the second half of source (0, 1)'s trajectory changes its mask logits in the
    later time frames only (up to the convolutions' reach), and no other source's."""
    torch.manual_seed(0)
    model = _with_output(TriBERT(**MOTION).eval())
    _follows_own_trajectory(model, reach_frames=0)


@torch.no_grad()
def test_the_per_source_decoder_follows_each_source_s_own_trajectory():
    """The same with the per-source decoder (synthesizer 0): the motion features modulate its
    levels per time frame; the decoder's 3x3 convolutions and the coarse levels' frames spread
    the change some frames earlier, and no other source moves."""
    torch.manual_seed(0)
    model = _with_output(TriBERT(**PER_SOURCE).eval())
    _follows_own_trajectory(model, reach_frames=48)


def _follows_own_trajectory(model: TriBERT, reach_frames: int):
    batch = make_batch(W=48)
    before = model(batch)["mask_logits"]
    changed = dict(batch, trajectory=batch["trajectory"].clone())
    changed["trajectory"][0, 1, 36:, :, :, :2] += 1.0
    after = model(changed)["mask_logits"]
    diff = (after - before).abs().amax(dim=2)                     # (B, N, T)
    assert diff[0, 1].max() > 1e-3
    assert diff[0, 0].max() == 0 and diff[1].max() == 0
    # trajectory frame 36 is 4.5 s; the two dilated blocks reach 6 frames (0.75 s) back, and
    # the decoder (if per source) ``reach_frames`` spectrogram frames more
    early = (torch.arange(256) + reach_frames) / SPEC_FRAMES_PER_SECOND < (36 - 6 - 1) / 8.0
    assert diff[0, 1, early].max() == 0
    assert diff[0, 1, ~early].max() > 1e-3


@torch.no_grad()
@pytest.mark.parametrize("kwargs", [PITCH, PITCH_PER_SOURCE], ids=["synthesizer", "per_source"])
def test_the_pitch_term_follows_each_source_s_own_trajectory(kwargs):
    """With motion_pitch only the changed source's logits move, in its later frames only
    (the per-source decoder spreads its own FiLM change further back, as above), and the
    harmonic term alone (the branch's other outputs held at zero) moves them too."""
    torch.manual_seed(0)
    model = _with_output(TriBERT(**kwargs).eval())
    _follows_own_trajectory(model, reach_frames=48 if kwargs is PITCH_PER_SOURCE else 0)
    if model.motion.out is not None:
        with torch.no_grad():
            model.motion.out.weight.zero_()
        _follows_own_trajectory(model, reach_frames=0)


@torch.no_grad()
def test_erasing_the_pose_erases_the_motion_too():
    torch.manual_seed(0)
    model = _with_output(TriBERT(**MOTION).eval())
    batch = make_batch()
    erased = model(dict(batch, erase=("pose",)))["mask_logits"]
    no_traj = model({k: v for k, v in batch.items() if k != "trajectory"} | {"erase": ("pose",)})
    torch.testing.assert_close(erased, no_traj["mask_logits"], rtol=0, atol=0)
    assert (model(batch)["mask_logits"] - erased).abs().max() > 1e-3


def test_pitch_needs_the_motion_branch():
    with pytest.raises(ValueError, match="motion_pitch > 0 needs motion > 0"):
        TriBERT(**{**TINY, "synthesizer": 4, "motion_pitch": 12})


def test_warped_row_inverts_the_front_end_s_warp():
    """A frequency placed by warped_row is where the front end's warp samples it."""
    from pipeline.data.spectrogram import warp_rows
    grid = warp_rows().double()       # linear position in [-1, 1] of each row (float32 there)
    freq = (grid + 1) / 2 * 511 * 11025 / 1022
    torch.testing.assert_close(warped_row(freq[1:]), torch.arange(1, 256, dtype=torch.float64),
                               rtol=0, atol=1e-4)


def test_the_comb_of_a_tone_s_own_pitch_matches_its_spectrum_best():
    """A harmonic tone (six partials of MIDI 57, 220 Hz) through the real front end: among all
    pitches, the comb that correlates best with its warped magnitude (each comb scaled to unit
    norm) is the tone's own, not the octave below (whose comb holds every partial and as many
    empty places) nor the octave above (every second partial only)."""
    from pipeline.data.spectrogram import CLIP_SAMPLES, SAMPLE_RATE, warped_magnitude
    t = torch.arange(CLIP_SAMPLES, dtype=torch.float64) / SAMPLE_RATE
    f0 = 440.0 * 2 ** ((57 - 69) / 12)
    wave = sum(torch.sin(2 * torch.pi * h * f0 * t) / h for h in range(1, 7)).float()
    mag = warped_magnitude(wave[None]).reshape(256, -1).mean(dim=1)        # (rows,)
    combs = PitchComb(60).combs().detach()
    score = (combs / combs.norm(dim=1, keepdim=True)) @ (mag / mag.norm())
    assert int(score.argmax()) + PITCH_LOW == 57
    assert score[57 - PITCH_LOW] > score[45 - PITCH_LOW] and score[57 - PITCH_LOW] > score[69 - PITCH_LOW]


def test_the_comb_term_is_zero_at_sigmoid_one_half_and_raises_the_active_pitch_s_partials():
    comb = PitchComb(48)
    logits = torch.zeros(1, 48, 3)
    assert comb(logits).abs().max() == 0
    p = 69 - PITCH_LOW                                  # A4: 440, 880, 1320 Hz ...
    logits[0, p, 1] = 10.0
    out = comb(logits).detach()[0]                      # (rows, T)
    assert out[:, 0].abs().max() == 0 and out[:, 2].abs().max() == 0
    for h in (1, 2, 3):
        row = int(round(float(warped_row(torch.tensor(440.0 * h)))))
        assert out[row, 1] > 0.45
    between = int(round(float(warped_row(torch.tensor(660.0)))))       # no partial of A4
    assert out[between, 1] < 0.05


def test_bands_need_the_synthesizer_s_motion_branch():
    with pytest.raises(ValueError, match="motion > 0 and synthesizer > 0"):
        TriBERT(**{**TINY, "synthesizer": 4, "motion_bands": 6})
    with pytest.raises(ValueError, match="motion > 0 and synthesizer > 0"):
        TriBERT(**{**PER_SOURCE, "motion_bands": 6})


def test_band_terms_set_each_source_against_the_others():
    """Own profile minus the mean of the others' (alone when N = 1), interpolated along
    frequency only: a profile raised in the lowest band raises the low bins most."""
    g = torch.Generator().manual_seed(0)
    b = torch.randn(2, 3, 4, 5, generator=g)
    out = band_terms(b, 4)                       # as many bins as bands: the values themselves
    torch.testing.assert_close(out[:, 0], b[:, 0] - (b[:, 1] + b[:, 2]) / 2)
    two = band_terms(b[:, :2], 4)
    torch.testing.assert_close(two[:, 0], -two[:, 1])
    torch.testing.assert_close(band_terms(b[:, :1], 4), b[:, :1])
    low = torch.zeros(1, 1, 4, 5)
    low[:, :, 0] = 1.0
    up = band_terms(low, 64)[0, 0, :, 0]
    assert up.shape == (64,)
    assert up[0] == 1.0 and up[-1] == 0.0 and torch.all(up[1:] <= up[:-1])


@torch.no_grad()
def test_bands_reach_the_sources_of_the_same_mixture_only_and_vary_with_frequency():
    """With motion_bands, changing source (0, 1)'s trajectory changes both sources' logits of
    mixture 0 (the other source's through the minus sign) in a way that differs across
    frequency, and leaves mixture 1 alone."""
    torch.manual_seed(0)
    model = _with_output(TriBERT(**BANDS).eval())
    batch = make_batch(W=48)
    before = model(batch)["mask_logits"]
    changed = dict(batch, trajectory=batch["trajectory"].clone())
    changed["trajectory"][0, 1, :, :, :, :2] += 1.0
    diff = model(changed)["mask_logits"] - before                # (B, N, F, T)
    assert diff[0, 0].abs().max() > 1e-3 and diff[0, 1].abs().max() > 1e-3
    assert diff[1].abs().max() == 0
    # source (0, 0) moves only through the band term, a profile over frequency: within a time
    # frame its change differs between bins (a per-frame bias would move them all alike)
    assert (diff[0, 0].amax(dim=0) - diff[0, 0].amin(dim=0)).max() > 1e-3


@pytest.mark.parametrize("kwargs", [MOTION, PITCH], ids=["motion", "motion_pitch"])
def test_the_branch_learns_from_the_mask_loss(kwargs):
    """Its zero-initialised outputs get a gradient at the first step, and one step of SGD on
    a loss that wants the masks to follow the trajectory lowers that loss."""
    torch.manual_seed(0)
    model = TriBERT(**kwargs).train()
    batch = make_batch(W=48)
    target = (batch["trajectory"][:, :, :, 0, 0, 0] > 0).float()          # (B, N, W)
    target = sample_frames(target, 256, 8.0)[:, :, None, :].expand(-1, -1, 256, -1)

    def loss():
        logits = model(batch)["mask_logits"]
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)

    first = loss()
    first.backward()
    assert model.motion.out.weight.grad.abs().sum() > 0
    if model.motion.pitch_out is not None:
        assert model.motion.pitch_out.weight.grad.abs().sum() > 0
    opt = torch.optim.SGD(model.motion.parameters(), lr=1.0)
    opt.step()
    assert loss() < first
