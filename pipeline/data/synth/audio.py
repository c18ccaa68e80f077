"""In-process fluidsynth rendering of a part, and the level rules for solos and duets.

Samples are pulled from the synth with ``fluid_synth_write_float`` (no audio driver, no int16
dither: fluidsynth's dither table comes from C ``rand()``, which would make the bytes depend on
whatever else in the process called it). Reverb and chorus are off, so a part is a pure
function of its notes.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

import numpy as np

from pipeline.data.synth.instruments import Instrument
from pipeline.data.synth.score import Note

PEAK = 0.8          # headroom: solos and duet mixtures peak here
PART_RMS = 0.1      # each duet part is brought to this RMS before the common peak scaling
BLOCK = 1024        # samples per fluidsynth pull (the event time grid)


def _write_float():
    import fluidsynth

    fn = fluidsynth.cfunc("fluid_synth_write_float", ctypes.c_int,
                          ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
                          ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1),
                          ("lincr", ctypes.c_int, 1), ("rout", ctypes.c_void_p, 1),
                          ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1))
    if fn is None:  # pragma: no cover - every fluidsynth 2.x exports it
        raise RuntimeError("libfluidsynth lacks fluid_synth_write_float")
    return fn


@contextlib.contextmanager
def _synth(soundfont: str, sample_rate: int):
    import fluidsynth

    if not Path(soundfont).is_file():
        raise FileNotFoundError(f"{soundfont}: soundfont not found (Debian: apt-get install "
                                "fluid-soundfont-gm; or set data.synthetic.soundfont)")
    synth = fluidsynth.Synth(gain=0.5, samplerate=float(sample_rate),
                             **{"synth.reverb.active": 0, "synth.chorus.active": 0,
                                "synth.cpu-cores": 1})
    try:
        sfid = synth.sfload(os.fspath(soundfont))
        if sfid < 0:
            raise RuntimeError(f"{soundfont}: fluidsynth cannot load this soundfont")
        yield synth, sfid
    finally:
        synth.delete()


def render_part(notes: list[Note], inst: Instrument, n_samples: int, sample_rate: int,
                soundfont: str) -> np.ndarray:
    """Mono float32 waveform (unnormalised) of ``notes`` played by ``inst``, ``n_samples`` long."""
    chan = 9 if inst.program is None else 0
    events = sorted([(int(round(n.onset * sample_rate)), 1, n.pitch, n.velocity) for n in notes]
                    + [(int(round((n.onset + n.duration) * sample_rate)), 0, n.pitch, 0)
                       for n in notes])
    write = _write_float()
    left = np.zeros(n_samples, np.float32)
    right = np.zeros(n_samples, np.float32)
    with _synth(soundfont, sample_rate) as (synth, sfid):
        synth.program_select(chan, sfid, 128 if inst.program is None else 0, inst.program or 0)
        pos, k = 0, 0
        while pos < n_samples:
            while k < len(events) and events[k][0] <= pos:
                _, on, pitch, vel = events[k]
                synth.noteon(chan, pitch, vel) if on else synth.noteoff(chan, pitch)
                k += 1
            nxt = events[k][0] if k < len(events) else n_samples
            n = int(min(BLOCK, n_samples - pos, max(1, nxt - pos)))
            write(synth.synth, n, left.ctypes.data + 4 * pos, 0, 1,
                  right.ctypes.data + 4 * pos, 0, 1)
            pos += n
    mono = 0.5 * (left + right)
    assert mono.shape == (n_samples,)
    return mono


def normalise_solo(x: np.ndarray) -> np.ndarray:
    """Scale to peak :data:`PEAK` (float32, in [-1, 1])."""
    peak = float(np.abs(x).max())
    if peak <= 0:
        raise ValueError("the rendered part is silent")
    return (x * np.float32(PEAK / peak)).astype(np.float32)


def balance_duet(parts: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Bring each part to the same RMS, then scale all by one factor so the mixture peaks at
    :data:`PEAK`. Returns the scaled parts and their mixture, which is exactly their float32
    sum (the stems written to disk are these parts)."""
    levelled = []
    for x in parts:
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        if rms <= 0:
            raise ValueError("a duet part is silent")
        levelled.append(x * np.float32(PART_RMS / rms))
    mix = np.sum(levelled, axis=0, dtype=np.float32)
    g = np.float32(PEAK / float(np.abs(mix).max()))
    scaled = [(x * g).astype(np.float32) for x in levelled]
    mix = scaled[0].copy()
    for x in scaled[1:]:
        mix += x
    return scaled, mix
