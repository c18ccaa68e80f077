"""Time-varying conditioning from the pose: each source's keypoint trajectory over the whole
audio window becomes a per-time-frame change of its synthesizer weights.

Why: with the synthesizer, source n's mask logits are sum_k w_nk a_k, one fixed combination of
the audio network's K channels per clip (w_n comes from the fused feature of three centre
frames). That is a spectral template per instrument: two instruments that share a register, or
two performers of one class, get near-equal templates and their mixtures come back unseparated
(docs/experiments.md section 34). The performer's motion - a bow reversing at each note, a
picking hand striking at each onset - says *when* that source sounds, which a template cannot.

:class:`PoseMotion` reads the person-normalised keypoints of the window's frames (x, y, score
per joint and person, as ST-GCN's input, from the pose shards' ``trajectory``), adds their frame
differences (the motion), and runs a small temporal convolution network over the frames; its
K + 1 outputs per frame are sampled at the spectrogram's frame times and give, for every
time frame t, an additive change g_nk(t) of the synthesizer weights and a bias g_n0(t):

    logits_n(f, t) = sum_k (w_nk + g_nk(t)) a_k(f, t) + g_n0(t)

The last layer starts at zero, so a new model begins as the template-only one.

With ``bands`` > 0 (``model.motion_bands``) the branch also gives each source a coarse
frequency profile per time frame, b_n(band, t), interpolated to the spectrogram's bins and added
to the logits as b_n - mean_{m != n} b_m (:func:`band_terms`). Why: g_nk(t) says *when* a source
sounds but picks *where in frequency* only through the K shared channels, and the renderer's
hands carry the pitch (fret, key, bar or finger position, pipeline/data/synth/holds.py); the
other sources' profiles enter with a minus sign so that a source whose own pose says little
(a wind player's fingers are not among the keypoints) still learns where the others are.

With ``pitches`` > 0 (``model.motion_pitch``) the branch also gives each source, per time
frame, an activation for each of that many semitones from MIDI :data:`PITCH_LOW` up, and adds
to the source's mask logits the harmonic series of the active pitches (:class:`PitchComb`):

    logits_n(f, t) += s * sum_p (sigmoid(l_np(t)) - 1/2) C_p(f)

where C_p is pitch p's comb on the warped frequency axis: a bump at each harmonic h * f0_p
(h = 1 .. :data:`HARMONICS`, below the Nyquist frequency) with a learned gain per harmonic.
Why: ``motion_bands`` gave each source a coarse profile that the branch had to learn the shape
of from scratch, and it learned nothing in the budget (docs/experiments.md section 46); the
renderer's stopping, fretting and key hands carry the pitch, and a pitched note's partials lie
at known places, so one activation per semitone says where in frequency all of a note's energy
is. Each source's term depends on its own trajectory only (the sources stay independent), and
at sigmoid(0) = 1/2 it is zero, so a new model with it is the model without it.

Timing: trajectory frame i shows the window's time i / fps; spectrogram frame j is centred on
sample j * 256 of the window at 11025 Hz (the STFT front end, pipeline/data/spectrogram.py), so
it sits at trajectory position j * 256 * fps / 11025, sampled by linear interpolation (clamped
at the ends).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SPEC_FRAMES_PER_SECOND = 11025 / 256   # the STFT front end's frame rate (hop 256 at 11025 Hz)
PITCH_LOW = 28          # MIDI E1 (41.2 Hz): the lowest note the renderer composes (electric bass)
HARMONICS = 24          # partials per comb (those above the Nyquist frequency are left out)


def frame_positions(frames: int, fps: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``frames`` spectrogram frames: the trajectory frame below each (int64) and the weight
    of the one after it (float), for linear interpolation at j * fps / spectrogram rate."""
    pos = torch.arange(frames, device=device, dtype=torch.float64) * (fps / SPEC_FRAMES_PER_SECOND)
    lo = pos.floor()
    return lo.long(), (pos - lo).float()


def sample_frames(x: torch.Tensor, frames: int, fps: float) -> torch.Tensor:
    """(M, C, W) values at W trajectory frames -> (M, C, frames) at the spectrogram's frame
    times (linear interpolation, the last trajectory frame held past the end)."""
    W = x.shape[-1]
    lo, frac = frame_positions(frames, fps, x.device)
    hi = (lo + 1).clamp(max=W - 1)
    lo = lo.clamp(max=W - 1)
    frac = frac.to(x.dtype)
    return x[..., lo] * (1 - frac) + x[..., hi] * frac


class PoseMotion(nn.Module):
    """Keypoint trajectories (M, W, P, V, 3) -> per-frame synthesizer changes
    (M, K + 1 + bands, frames).

    Per trajectory frame the input is every person's joints' (x, y, score) and the (x, y)
    difference from the previous frame (zero where either frame misses the joint); a linear
    layer takes it to ``width`` channels, then two residual blocks of temporal convolutions
    (kernel 5, dilation 1 and 2: about 1.6 s of context at 8 fps each way) and a zero-initialised
    1x1 convolution to K + 1 outputs, and ``bands`` more for :func:`band_terms`."""

    def __init__(self, persons: int, joints: int, width: int, synthesizer: int, fps: float,
                 bands: int = 0, pitches: int = 0):
        super().__init__()
        self.fps = float(fps)
        self.bands = int(bands)
        self.inp = nn.Linear(persons * joints * 5, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(width, width, 5, padding=2 * d, dilation=d),
                          nn.BatchNorm1d(width), nn.ReLU(),
                          nn.Conv1d(width, width, 1))
            for d in (1, 2))
        # with the per-source decoder (synthesizer 0) the features themselves modulate it
        self.out = nn.Conv1d(width, synthesizer + 1 + self.bands, 1) if synthesizer else None
        if self.out is not None:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        # model.motion_pitch: per-semitone activations, zero-initialised (sigmoid 1/2: no term)
        self.pitch_out = self.comb = None
        if pitches:
            self.pitch_out = nn.Conv1d(width, pitches, 1)
            nn.init.zeros_(self.pitch_out.weight)
            nn.init.zeros_(self.pitch_out.bias)
            self.comb = PitchComb(pitches)

    @staticmethod
    def frame_inputs(traj: torch.Tensor) -> torch.Tensor:
        """(M, W, P, V, 3) -> (M, W, P * V * 5): x, y, score and the motion dx, dy."""
        seen = (traj[..., 2:3] > 0).to(traj.dtype)
        xy = traj[..., :2] * seen
        both = seen[:, 1:] * seen[:, :-1]
        motion = torch.cat([torch.zeros_like(xy[:, :1]), (xy[:, 1:] - xy[:, :-1]) * both], dim=1)
        x = torch.cat([xy, traj[..., 2:3], motion], dim=-1)
        return x.reshape(*x.shape[:2], -1)

    def features(self, traj: torch.Tensor) -> torch.Tensor:
        """(M, W, P, V, 3) -> (M, width, W) the temporal network's features per trajectory frame."""
        x = self.inp(self.frame_inputs(traj.float())).transpose(1, 2)     # (M, width, W)
        for block in self.blocks:
            x = x + block(F.relu(x))
        return F.relu(x)

    def forward(self, traj: torch.Tensor, frames: int) -> torch.Tensor:
        """-> (M, K + 1 + bands, frames); without the synthesizer (M, width, frames), the
        features themselves at the spectrogram's frame times."""
        return self.terms(self.features(traj), frames)

    def terms(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """:meth:`forward` from the features (M, width, W) of :meth:`features`."""
        return sample_frames(x if self.out is None else self.out(x), frames, self.fps)

    def pitch_term(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """Features (M, width, W) -> the mask-logit term (M, rows, frames) of the per-semitone
        activations at the spectrogram's frame times (:class:`PitchComb`; needs pitches > 0)."""
        return self.comb(sample_frames(self.pitch_out(x), frames, self.fps))


def warped_row(freq: torch.Tensor, rows: int = 256) -> torch.Tensor:
    """Frequency in Hz -> its (fractional) row on the front end's warped axis: the STFT bin
    f * 1022 / 11025 of 512, placed as ``pipeline.data.spectrogram.unwarp_rows`` places it."""
    grid = freq / (11025 / 1022) / 511 * 2 - 1          # the linear bin's position in [-1, 1]
    return torch.log(10 * grid + 11) / math.log(21) * (rows - 1)


class PitchComb(nn.Module):
    """Per-semitone activations (M, P, T) (logits) -> a mask-logit term (M, 256, T):
    ``scale * sum_p (sigmoid(l_p) - 1/2) C_p(f)``.

    C_p = sum_h gain_h bump(f; h * f0_p) over the harmonics below the Nyquist frequency; f0_p
    is MIDI pitch PITCH_LOW + p. A bump is a Gaussian over the warped rows centred on the
    harmonic's row (:func:`warped_row`), as wide as one STFT bin (10.8 Hz) or 0.6 of a row,
    whichever is wider there, with peak 1. ``gain`` (one per harmonic) and ``scale`` are
    learned, starting at 1."""

    def __init__(self, pitches: int, harmonics: int = HARMONICS, rows: int = 256):
        super().__init__()
        midi = PITCH_LOW + torch.arange(pitches, dtype=torch.float64)
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        freq = f0[:, None] * torch.arange(1, harmonics + 1, dtype=torch.float64)   # (P, H)
        centre = warped_row(freq, rows)
        # local width of one STFT bin in rows: d row / d f times the bin's 11025 / 1022 Hz
        width = (warped_row(freq + 0.5 * 11025 / 1022, rows)
                 - warped_row(freq - 0.5 * 11025 / 1022, rows)).clamp(min=0.6)
        r = torch.arange(rows, dtype=torch.float64)
        bumps = torch.exp(-0.5 * ((r - centre[..., None]) / width[..., None]) ** 2)
        bumps = bumps * (freq < 11025 / 2)[..., None]
        self.register_buffer("bumps", bumps.float(), persistent=False)   # (P, H, rows)
        self.gain = nn.Parameter(torch.ones(harmonics))
        self.scale = nn.Parameter(torch.ones(()))

    def combs(self) -> torch.Tensor:
        """(P, rows) each pitch's comb with the current gains."""
        return torch.einsum("h,phr->pr", self.gain, self.bumps)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        act = torch.sigmoid(logits) - 0.5                                   # (M, P, T)
        return self.scale * torch.einsum("pr,mpt->mrt", self.combs().to(act.dtype), act)


def band_terms(bands: torch.Tensor, freqs: int) -> torch.Tensor:
    """(B, N, bands, T) per-source frequency profiles -> (B, N, freqs, T) logit terms: each
    source's own profile minus the mean of the other sources' (its own alone when N = 1),
    linearly interpolated from the bands to ``freqs`` bins (the spectrogram's axis as it is)."""
    B, N, Bd, T = bands.shape
    if N > 1:
        bands = bands - (bands.sum(1, keepdim=True) - bands) / (N - 1)
    out = F.interpolate(bands.reshape(B * N, 1, Bd, T), size=(freqs, T), mode="bilinear",
                        align_corners=False)
    return out.reshape(B, N, freqs, T)
