import math

import pytest
import torch

from pipeline.train import losses


def test_mask_loss_is_the_weighted_pixel_bce():
    logits, masks = torch.randn(2, 2, 4, 4), (torch.rand(2, 2, 4, 4) > 0.5).float()
    mag = torch.rand(2, 1, 4, 4) * 20
    w = losses.mask_weight(mag)
    p = torch.sigmoid(logits)
    manual = -(w * (masks * torch.log(p) + (1 - masks) * torch.log(1 - p))).mean()
    torch.testing.assert_close(losses.mask_loss(logits, masks, w), manual)
    assert w.min() >= 1e-3 and w.max() <= 10


def test_tribert_loss_terms_and_a_baseline_without_classifiers():
    out = {"mask_logits": torch.zeros(1, 2, 4, 4), "visual_scores": torch.full((1, 2, 3), 0.5),
           "pose_scores": torch.full((1, 2, 3), 0.5), "audio_logits": torch.zeros(1, 2, 3)}
    feats = {"masks": torch.ones(1, 2, 4, 4), "weight": torch.ones(1, 1, 4, 4)}
    labels = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]])
    terms = losses.tribert_loss(out, feats, labels)
    for k in ("mask", "visual", "pose", "audio"):
        torch.testing.assert_close(terms[k], torch.log(torch.tensor(2.0)))
    sop_terms = losses.tribert_loss({"mask_logits": out["mask_logits"]}, feats, labels)
    assert sop_terms["visual"] == 0 and sop_terms["audio"] == 0
    torch.testing.assert_close(losses.total_loss(terms, mask=2.0, visual=0, pose=0, audio=0),
                               2 * torch.log(torch.tensor(2.0)))


def test_bce_on_probabilities_never_runs_under_autocast(monkeypatch):
    """CUDA's autocast raises on F.binary_cross_entropy (probabilities in, not logits); the
    CPU's allows it, so here a spy checks the rule CUDA enforces: inside a bf16 autocast
    training step, the WSDDN losses run with autocast off, in float32."""
    import torch.nn.functional as F

    from pipeline.train import losses

    seen = []
    real = F.binary_cross_entropy

    def spy(input, target, *a, **kw):
        seen.append((torch.is_autocast_enabled("cpu"), input.dtype))
        return real(input, target, *a, **kw)

    monkeypatch.setattr(F, "binary_cross_entropy", spy)
    B, N, C = 2, 2, 21
    out = {"mask_logits": torch.randn(B, N, 8, 4), "visual_scores": torch.rand(B, N, C),
           "pose_scores": torch.rand(B, N, C), "audio_logits": torch.randn(B, N, C)}
    feats = {"masks": (torch.rand(B, N, 8, 4) > 0.5).float(), "weight": torch.rand(B, 1, 8, 4)}
    labels = torch.zeros(B, N, C)
    labels[..., 3] = 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = losses.tribert_loss({k: v.bfloat16() if "scores" in k else v
                                     for k, v in out.items()}, feats, labels)
    assert seen == [(False, torch.float32)] * 2
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in terms.values())


def _two_tones():
    """Two sources of equal power in disjoint bands (a 220 Hz sine, a gated 1.8 kHz tone), each
    scaled by 1/2."""
    from pipeline.data import spectrogram as sp
    t = torch.arange(65535) / 11025
    low = 0.3 * torch.sin(2 * torch.pi * 220 * t)
    gate = (torch.sin(2 * torch.pi * 3 * t) > 0).float()
    high = 0.3 * math.sqrt(2) * gate * torch.sin(2 * torch.pi * 1800 * t)
    return sp.mixture_features(torch.stack([low, high])[None] / 2)


def test_signal_loss_is_the_negative_snr_of_the_output_waveforms():
    from pipeline.separation.infer import masks_to_waveforms
    feats = _two_tones()
    ideal = torch.where(feats["masks"] > 0, 12.0, -12.0)
    # the ideal masks separate two disjoint tones to near the cap; hedging masks (0.5 each,
    # normalised) give each source half the mixture: an error of (s1 - s2) / 2, SNR 10 log10(2)
    # for two sources of equal power
    assert -losses.signal_loss(ideal, feats) > 25
    hedge = torch.zeros_like(ideal)
    power = feats["sources"].pow(2).sum(-1)
    assert torch.isclose(power[0, 0], power[0, 1], rtol=0.05)
    torch.testing.assert_close(losses.signal_loss(hedge, feats),
                               torch.tensor(-10 * math.log10(2.0)), atol=0.1, rtol=0)
    # by hand, from the waveforms inference makes, with the cap
    est = masks_to_waveforms(torch.sigmoid(ideal), feats, "normalized")
    ref = feats["sources"][..., :est.shape[-1]]
    p, e = ref.pow(2).sum(-1), (ref - est).pow(2).sum(-1)
    by_hand = -(10 * torch.log10(p + 1e-8) - 10 * torch.log10(e + 1e-3 * p + 1e-8)).mean()
    torch.testing.assert_close(losses.signal_loss(ideal, feats), by_hand)
    # the cap: a perfect estimate scores 30 dB, not infinity
    assert -losses.signal_loss(ideal, feats, cap_db=10.0) < 10.0


def test_signal_loss_gradient_moves_the_masks_towards_their_sources():
    feats = _two_tones()
    logits = torch.zeros_like(feats["masks"], requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.5)
    before = float(losses.signal_loss(logits, feats).detach())
    for _ in range(10):
        opt.zero_grad()
        losses.signal_loss(logits, feats).backward()
        opt.step()
    after = float(losses.signal_loss(logits, feats).detach())
    assert after < before - 5, (before, after)
    # source 0 (the low tone) claimed the low rows, source 1 the high ones
    low_rows = feats["mags"][0, 0].sum(-1) > feats["mags"][0, 1].sum(-1)
    gap = (logits[0, 0] - logits[0, 1]).detach().mean(-1)
    assert (gap[low_rows] > 0).float().mean() > 0.9 and (gap[~low_rows] < 0).float().mean() > 0.9


def test_signal_loss_refuses_binary_masks_and_is_off_unless_asked():
    feats = _two_tones()
    logits = torch.zeros_like(feats["masks"])
    with pytest.raises(ValueError, match="binary"):
        losses.signal_loss(logits, feats, "binary")
    out = {"mask_logits": logits}
    assert "signal" not in losses.tribert_loss(out, feats, torch.zeros(1, 2, 3))
    terms = losses.tribert_loss(out, feats, torch.zeros(1, 2, 3), signal="ratio")
    torch.testing.assert_close(terms["signal"], losses.signal_loss(logits, feats, "ratio"))


def _critic_case(seed: int = 0):
    from model.heads import SpectrogramCritic
    torch.manual_seed(seed)
    feats = _two_tones()
    B, N, F_, T = feats["masks"].shape
    critic = SpectrogramCritic(4, 3, bins=F_)
    labels = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]])
    return feats, critic, labels


def test_separated_loss_trains_the_critic_on_true_sources_and_the_masks_on_estimates():
    """The critic's weights get gradients only from the true sources' half (the estimates'
    half holds them fixed); the masks get gradients only through the estimates' half."""
    from pipeline.separation.infer import output_masks
    feats, critic, labels = _critic_case()
    logits = torch.zeros_like(feats["masks"], requires_grad=True)
    loss = losses.separated_loss(critic, logits, feats, labels)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    grads = {k: p.grad.clone() for k, p in critic.named_parameters()}
    critic.zero_grad()
    B, N, F_, T = feats["masks"].shape
    clean = critic(torch.log(feats["mags"] + losses.CRITIC_EPS).reshape(B * N, 1, F_, T))
    torch.nn.functional.binary_cross_entropy_with_logits(clean, labels.reshape(B * N, -1)).backward()
    for k, p in critic.named_parameters():
        torch.testing.assert_close(grads[k], p.grad)
    # its value: the two halves' BCEs, the estimates from the output's normalized masks
    with torch.no_grad():
        est = output_masks(torch.sigmoid(logits), "normalized") * feats["mag_mix"]
        heard = critic(torch.log(est + losses.CRITIC_EPS).reshape(B * N, 1, F_, T))
        y = labels.reshape(B * N, -1)
        by_hand = (torch.nn.functional.binary_cross_entropy_with_logits(clean, y)
                   + torch.nn.functional.binary_cross_entropy_with_logits(heard, y))
    torch.testing.assert_close(loss.detach(), by_hand)


def test_separated_loss_moves_the_masks_towards_what_the_critic_hears_as_each_source():
    """A critic that has learnt the two tones (trained on the true sources by the term itself)
    then lowers the estimates' half of the term by moving the masks, starting from masks that
    share every bin: source 0 (class 0, the low tone) takes the low tone's energy. (With two
    training spectrograms the critic may hear class 1 as "no low tone", so only source 0's
    tone is asserted.)"""
    from pipeline.separation.infer import output_masks
    feats, critic, labels = _critic_case()
    B, N, F_, T = feats["masks"].shape
    opt = torch.optim.Adam(critic.parameters(), lr=0.01)
    for _ in range(60):   # the term's first half alone: the critic learns the tones
        opt.zero_grad()
        losses.separated_loss(critic, torch.zeros_like(feats["masks"]), feats, labels).backward()
        opt.step()

    def heard_bce(logits):
        est = output_masks(torch.sigmoid(logits), "normalized") * feats["mag_mix"]
        heard = critic(torch.log(est + losses.CRITIC_EPS).reshape(B * N, 1, F_, T))
        return torch.nn.functional.binary_cross_entropy_with_logits(
            heard, labels.reshape(B * N, -1)).item()

    logits = torch.zeros_like(feats["masks"], requires_grad=True)
    before = heard_bce(logits.detach())
    opt = torch.optim.Adam([logits], lr=0.2)
    for _ in range(30):
        opt.zero_grad()
        losses.separated_loss(critic, logits, feats, labels).backward()
        opt.step()
    assert heard_bce(logits.detach()) < 0.5 * before
    gap = (logits[0, 0] - logits[0, 1]).detach().mean(-1)     # per frequency row
    low = feats["mags"][0, 0].sum(-1)
    assert (low * (gap > 0)).sum() / low.sum() > 0.8


def test_separated_loss_is_off_unless_a_critic_is_given():
    feats, critic, labels = _critic_case()
    out = {"mask_logits": torch.zeros_like(feats["masks"])}
    assert "separated" not in losses.tribert_loss(out, feats, labels)
    terms = losses.tribert_loss(out, feats, labels, critic=critic, separated="ratio")
    torch.testing.assert_close(terms["separated"], losses.separated_loss(
        critic, out["mask_logits"], feats, labels, "ratio"))


def test_the_pitch_term_is_the_mask_loss_of_the_harmonic_term_alone_and_only_with_one():
    """train.loss.pitch: with ``pitch_logits`` in the outputs (model.motion_pitch) the term is
    the weighted mask BCE of that term by itself, not of the full logits; without, no term."""
    g = torch.Generator().manual_seed(0)
    feats = {"masks": (torch.rand(1, 2, 4, 4, generator=g) > 0.5).float(),
             "weight": torch.rand(1, 1, 4, 4, generator=g) + 0.5}
    labels = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]])
    out = {"mask_logits": torch.randn(1, 2, 4, 4, generator=g)}
    assert "pitch" not in losses.tribert_loss(out, feats, labels)
    out["pitch_logits"] = torch.randn(1, 2, 4, 4, generator=g)
    terms = losses.tribert_loss(out, feats, labels)
    torch.testing.assert_close(terms["pitch"], losses.mask_loss(out["pitch_logits"],
                                                                feats["masks"], feats["weight"]))
    assert abs(float(terms["pitch"] - terms["mask"])) > 1e-3


def test_the_bins_term_classifies_each_bin_as_its_dominant_source_s_instrument():
    """train.loss.bins: a bin held by source n's ideal mask has source n's classes as targets
    (the other classes 0; no class where no source dominates), each bin weighted as in the
    mask term; logits that say so score near 0, the same logits with the sources' classes
    exchanged score high; zero-weight bins count nothing; the term comes with ``bin_logits``."""
    masks = torch.zeros(1, 2, 2, 3)
    masks[0, 0, 0, :] = 1.0            # frequency row 0: source 0; row 1, frames 0-1: source 1
    masks[0, 1, 1, :2] = 1.0           # bin (1, 2): no source dominates
    labels = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    weight = torch.ones(1, 1, 2, 3)
    target = torch.zeros(1, 2, 3, 3)
    target[0, 0, :, 1] = 1.0
    target[0, 1, :2, 2] = 1.0
    right = (target * 2 - 1) * 20.0
    assert float(losses.bin_class_loss(right, masks, labels, weight)) < 1e-6
    wrong = right[..., [0, 2, 1]]
    bad = float(losses.bin_class_loss(wrong, masks, labels, weight))
    # 5 dominated bins x 2 wrong classes x 20 nats, over 6 bins and 2 sources
    assert bad == pytest.approx(5 * 2 * 20.0 / 6 / 2, rel=1e-4)
    unweighted = weight.clone()
    unweighted[0, 0, 0, :] = 0.0       # source 0's bins no longer count
    assert float(losses.bin_class_loss(wrong, masks, labels, unweighted)) == pytest.approx(
        2 * 2 * 20.0 / 6 / 2, rel=1e-4)
    out = {"mask_logits": torch.zeros(1, 2, 2, 3)}
    feats = {"masks": masks, "weight": weight}
    assert "bins" not in losses.tribert_loss(out, feats, labels)
    terms = losses.tribert_loss({**out, "bin_logits": wrong}, feats, labels)
    assert float(terms["bins"]) == pytest.approx(bad)
