"""The audio front end of Sound-of-Pixels, as used by TriBERT (paper Sec. 3.3; REFERENCE.md
"Audio front end"): STFT, log-frequency warp and its inverse, iSTFT with the mixture phase, and
the per-batch mixture features (log magnitude, binary masks, loss weight).

Conventions (fixed; the shards record them as attributes):

- STFT: n_fft 1022, hop 256, periodic Hann window, centred with zero padding (librosa's default
  ``pad_mode="constant"``) -> 512 frequency bins x 256 frames for a 65535-sample clip.
- Warp: bilinear ``grid_sample`` along frequency only, 512 -> 256 rows, sampling linear-frequency
  position ``grid_y = (21^((y+1)/2) - 11) / 10`` for ``y`` in ``linspace(-1, 1, 256)``.
  ``align_corners=True``: grid -1 and +1 are the centres of the first and last bins, so the
  time axis (``x = linspace(-1, 1, T)``) maps exactly onto the input frames and the warp touches
  frequency only. This is the pre-1.3 PyTorch behaviour the SoP code was written against.
- Unwarp: the same resampling in the other direction, ``y = log(10 y' + 11) / log(21) * 2 - 1``,
  256 -> 512 rows.
- Mixtures: always built from summed waveforms (:func:`mixture_features` takes the waveforms);
  magnitudes of sources never add up to the magnitude of their mixture.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SAMPLE_RATE = 11025
CLIP_SAMPLES = 65535
N_FFT = 1022
HOP = 256
N_BINS = N_FFT // 2 + 1          # 512
N_FRAMES = CLIP_SAMPLES // HOP + 1  # 256 (centred STFT)
WARP_SIZE = 256
ALIGN_CORNERS = True
ISTFT_SAMPLES = (N_FRAMES - 1) * HOP  # 65280: what a centred iSTFT of 256 frames returns
LOG_EPS = 1e-10                   # added before log(mag) for the network input


def _window(device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device, dtype=dtype)


def stft(wave: torch.Tensor) -> torch.Tensor:
    """Complex STFT of waveforms ``(B, L)`` -> ``(B, 512, 1 + L // 256)``."""
    assert wave.dim() == 2, f"stft expects (B, L), got {tuple(wave.shape)}"
    return torch.stft(wave, N_FFT, hop_length=HOP, window=_window(wave.device, wave.dtype),
                      center=True, pad_mode="constant", return_complex=True)


def istft(mag: torch.Tensor, phase: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """Waveforms ``(B, L)`` from linear magnitude and phase ``(B, 512, T)``; ``L`` defaults to
    ``(T - 1) * 256`` (65280 for a clip), as in SoP's inference."""
    assert mag.shape == phase.shape and mag.shape[-2] == N_BINS, (mag.shape, phase.shape)
    spec = torch.polar(mag, phase)
    length = (mag.shape[-1] - 1) * HOP if length is None else length
    return torch.istft(spec, N_FFT, hop_length=HOP, window=_window(mag.device, mag.dtype),
                       center=True, length=length)


def _grid(rows: torch.Tensor, width: int) -> torch.Tensor:
    """A sampling grid ``(1, len(rows), width, 2)`` with y = ``rows`` and x = linspace(-1, 1)."""
    xs = torch.linspace(-1.0, 1.0, width, dtype=rows.dtype, device=rows.device)
    gy, gx = torch.meshgrid(rows, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


def warp_rows(size: int = WARP_SIZE, device=None) -> torch.Tensor:
    """Linear-frequency grid positions sampled by each of the ``size`` warped rows."""
    y = torch.linspace(-1.0, 1.0, size, dtype=torch.float64, device=device)
    return ((torch.pow(21.0, (y + 1) / 2) - 11) / 10).float()


def unwarp_rows(size: int = N_BINS, device=None) -> torch.Tensor:
    """Warped-grid positions sampled by each of the ``size`` linear-frequency bins."""
    yp = torch.linspace(-1.0, 1.0, size, dtype=torch.float64, device=device)
    return (torch.log(10 * yp + 11) / math.log(21) * 2 - 1).float()


def _resample_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of ``(B, C, H, W)`` along H at grid positions ``rows``."""
    assert x.dim() == 4, f"expected (B, C, H, W), got {tuple(x.shape)}"
    grid = _grid(rows.to(x.device, x.dtype), x.shape[-1]).expand(x.shape[0], -1, -1, -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                         align_corners=ALIGN_CORNERS)


def warp(x: torch.Tensor, size: int = WARP_SIZE) -> torch.Tensor:
    """Log-frequency warp ``(B, C, 512, T)`` -> ``(B, C, size, T)``."""
    return _resample_rows(x, warp_rows(size, x.device))


def unwarp(x: torch.Tensor, bins: int = N_BINS) -> torch.Tensor:
    """Inverse warp ``(B, C, 256, T)`` -> ``(B, C, bins, T)`` (e.g. predicted masks)."""
    return _resample_rows(x, unwarp_rows(bins, x.device))


def warped_magnitude(wave: torch.Tensor) -> torch.Tensor:
    """Warped linear magnitude ``(B, 256, 256)`` of clips ``(B, 65535)`` (what shards cache)."""
    mag = stft(wave).abs().unsqueeze(1)
    out = warp(mag).squeeze(1)
    assert out.shape[1:] == (WARP_SIZE, N_FRAMES) or wave.shape[1] != CLIP_SAMPLES, out.shape
    return out


def mixture_features(sources: torch.Tensor) -> dict[str, torch.Tensor]:
    """Training features of a batch of mixtures, computed from the source waveforms.

    ``sources``: ``(B, N, L)``, each already scaled (1/N and any gain); the mixture is their sum
    (SoP's mix-and-separate, paper Sec. 3.3). Returns, all warped to 256 rows:

    - ``sources``: ``(B, N, L)`` the scaled source waveforms themselves (the references)
    - ``mix``: ``(B, L)`` mixture waveform
    - ``log_mag_mix``: ``(B, 1, 256, T)`` network input ``log(mag_mix + 1e-10)``
    - ``mag_mix``: ``(B, 1, 256, T)``; ``mags``: ``(B, N, 256, T)`` per-source magnitudes
    - ``masks``: ``(B, N, 256, T)`` binary targets ``mag_n > 0.5 * mag_mix``
    - ``weight``: ``(B, 1, 256, T)`` BCE weight ``clamp(log1p(mag_mix), 1e-3, 10)``
    - ``mix_spec``: ``(B, 512, T)`` complex STFT of the mixture (phase for the iSTFT)
    """
    assert sources.dim() == 3, f"expected (B, N, L), got {tuple(sources.shape)}"
    b, n, length = sources.shape
    mix = sources.sum(dim=1)
    mix_spec = stft(mix)
    mag_mix = warp(mix_spec.abs().unsqueeze(1))
    mags = warp(stft(sources.reshape(b * n, length)).abs().unsqueeze(1)).reshape(
        b, n, *mag_mix.shape[-2:])
    return {
        "sources": sources,
        "mix": mix,
        "mix_spec": mix_spec,
        "mag_mix": mag_mix,
        "log_mag_mix": torch.log(mag_mix + LOG_EPS),
        "mags": mags,
        "masks": (mags > 0.5 * mag_mix).float(),
        "weight": torch.clamp(torch.log1p(mag_mix), 1e-3, 10.0),
    }


def batch_spectrograms(batch: dict) -> dict[str, torch.Tensor]:
    """:func:`mixture_features` of a collated :class:`pipeline.data.dataset.MixDataset` batch
    (its ``"audio"`` entry, ``(B, N, L)``)."""
    return mixture_features(batch["audio"])
