"""Audio front end: STFT against librosa, exact mixtures, warp round trip, iSTFT."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from pipeline.data import spectrogram as sp

torch.set_num_threads(1)


def _waves(n=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(sp.CLIP_SAMPLES) / sp.SAMPLE_RATE
    out = [0.3 * np.sin(2 * np.pi * (220 + 300 * i) * t) + 0.05 * rng.standard_normal(t.size)
           for i in range(n)]
    return np.stack(out).astype(np.float32)


def _librosa_stft(x):
    return librosa.stft(x, n_fft=sp.N_FFT, hop_length=sp.HOP, window="hann", center=True)


def test_stft_matches_librosa():
    x = _waves(1)[0]
    ours = sp.stft(torch.from_numpy(x[None]))[0].numpy()
    ref = _librosa_stft(x)
    assert ours.shape == ref.shape == (512, 256)
    assert np.allclose(ours, ref, atol=2e-3 * np.abs(ref).max())


def test_mixture_magnitude_comes_from_the_summed_waveform():
    a, b = _waves(2)
    feats = sp.mixture_features(torch.from_numpy(np.stack([a, b])[None]))
    assert torch.allclose(feats["mix"][0], torch.from_numpy(a + b))
    exact = np.abs(_librosa_stft(a + b))
    summed = np.abs(_librosa_stft(a)) + np.abs(_librosa_stft(b))
    ours = np.abs(feats["mix_spec"][0].numpy())
    assert np.allclose(ours, exact, atol=2e-3 * exact.max())
    assert not np.allclose(ours, summed, atol=2e-3 * exact.max())  # magnitudes do not add
    warped = sp.warp(torch.from_numpy(exact)[None, None].float())
    assert torch.allclose(feats["mag_mix"], warped, atol=2e-3 * float(exact.max()))


def test_warp_keeps_the_ends_and_the_time_axis():
    x = torch.rand(1, 1, 512, 256)
    w = sp.warp(x)
    assert w.shape == (1, 1, 256, 256)
    assert torch.allclose(w[..., 0, :], x[..., 0, :], atol=1e-4)    # align_corners=True
    assert torch.allclose(w[..., -1, :], x[..., -1, :], atol=1e-4)
    shifted = sp.warp(torch.roll(x, 1, dims=-1))  # columns are not mixed: time is untouched
    assert torch.allclose(shifted, torch.roll(w, 1, dims=-1), atol=1e-4)


def test_warp_unwarp_round_trip_on_smooth_spectra():
    # Smooth along frequency (two cycles over 512 bins): the warp samples the top octave about
    # every 6 bins, so only smooth inputs survive; tolerance 1% of the range.
    f = torch.arange(512, dtype=torch.float32)
    x = (1 + torch.cos(2 * np.pi * 2 * f / 512))[None, None, :, None].expand(2, 1, 512, 256)
    back = sp.unwarp(sp.warp(x))
    assert back.shape == x.shape
    assert (back - x).abs().max() < 0.02


def test_round_trip_fails_for_rough_spectra():
    x = torch.rand(1, 1, 512, 8, generator=torch.Generator().manual_seed(0))
    assert (sp.unwarp(sp.warp(x)) - x).abs().max() > 0.1  # the tolerance above is not vacuous


def test_istft_with_mixture_phase_reconstructs_the_clip():
    x = torch.from_numpy(_waves(1))
    spec = sp.stft(x)
    y = sp.istft(spec.abs(), spec.angle())
    assert y.shape == (1, sp.ISTFT_SAMPLES) == (1, 65280)
    assert torch.allclose(y, x[:, :65280], atol=1e-4)


def test_batch_features_masks_and_weights():
    feats = sp.batch_spectrograms({"audio": torch.from_numpy(_waves(4).reshape(2, 2, -1)) / 2})
    assert feats["log_mag_mix"].shape == (2, 1, 256, 256)
    assert feats["masks"].shape == (2, 2, 256, 256)
    assert set(feats["masks"].unique().tolist()) <= {0.0, 1.0}
    assert feats["masks"].sum() > 0
    w = feats["weight"]
    assert w.min() >= 1e-3 and w.max() <= 10
    assert torch.allclose(w, torch.clamp(torch.log1p(feats["mag_mix"]), 1e-3, 10))


@pytest.mark.parametrize("shape", [(65535,), (1, 2, 65535)])
def test_stft_rejects_wrong_rank(shape):
    with pytest.raises(AssertionError):
        sp.stft(torch.zeros(shape))
