"""Note events from a recording, for ``tribert synth render``: onsets (librosa), a velocity from
the onset strength, a pitch from the strongest spectral peak after each onset (folded into the
instrument's register by octaves) and, for drums and congas, a drum chosen by the brightness
of the hit.
"""
from __future__ import annotations

import librosa
import numpy as np

from pipeline.data.synth import instruments as ins
from pipeline.data.synth.instruments import Instrument
from pipeline.data.synth.score import FOOT, LEFT, RIGHT, Note

WINDOW = 2048
HOP_SECONDS = 128 / 11025   # onset-strength hop, ~11.6 ms (librosa's default 512 samples is 46 ms
                            # at 11025 Hz: onsets came 60 ms late and F at 50 ms was 0.23)
MAX_NOTE = 2.0   # seconds a note may last without a new onset


def notes_from_audio(y: np.ndarray, sr: int, inst: Instrument) -> list[Note]:
    """Note events of mono ``y`` as played by ``inst`` (empty if no onset is found)."""
    hop = max(16, int(round(sr * HOP_SECONDS)))
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    peaks = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop, units="frames")
    # each onset moved back from its strength peak to the energy minimum before it: the peak
    # lags the attack by one to several frames, and the performer must move on the attack
    starts = librosa.onset.onset_backtrack(peaks, env)
    starts, first = np.unique(starts, return_index=True)   # two peaks, one attack: one note
    peaks = peaks[first]
    times = librosa.frames_to_time(starts, sr=sr, hop_length=hop)
    peak = float(env.max()) if env.size and env.max() > 0 else 1.0
    duration = len(y) / sr
    notes = []
    for k, (f, t) in enumerate(zip(peaks, times)):
        nxt = times[k + 1] if k + 1 < len(times) else duration
        seg = y[int(t * sr): int(t * sr) + WINDOW]
        if seg.size < 64:
            continue
        vel = int(np.clip(40 + 87 * env[f] / peak, 1, 127))
        pitch, hand = _classify(seg, sr, inst)
        notes.append(Note(float(t), float(min(nxt - t, MAX_NOTE)), pitch, vel, hand))
    return notes


def _classify(seg: np.ndarray, sr: int, inst: Instrument) -> tuple[int, int]:
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1.0 / sr)
    if inst.style in ("drums", "congas"):
        centroid = float((spec * freqs).sum() / max(spec.sum(), 1e-9))
        if inst.style == "congas":
            return (ins.CONGA_LOW, LEFT) if centroid < 1500 else (ins.CONGA_OPEN_HIGH, RIGHT)
        if centroid < 400:
            return ins.KICK, FOOT
        return (ins.SNARE, LEFT) if centroid < 3000 else (ins.HIHAT, RIGHT)
    band = (freqs > 30) & (freqs < 4200)
    f0 = float(freqs[band][np.argmax(spec[band])]) if band.any() else 440.0
    midi = int(round(librosa.hz_to_midi(max(f0, 1.0))))
    while midi < inst.low:
        midi += 12
    while midi > inst.high:
        midi -= 12
    midi = max(midi, inst.low)
    hand = (LEFT if midi < 60 else RIGHT) if inst.name == "piano" else RIGHT
    return midi, hand
