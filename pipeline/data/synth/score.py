"""Seeded composer: the note events of one performer's part.

A part is a list of :class:`Note` sorted by onset. Every part has its own tempo (75-150 BPM),
key (any of 12 roots), mode, phrase lengths, rhythm values, rests between and inside phrases,
and a dynamic arc per phrase (velocity), within the register of its instrument. The ``hand``
of a note says which limb plays it; the motion model uses it (0 left hand, 1 right hand, 2 foot).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.synth import instruments as ins
from pipeline.data.synth.instruments import Instrument

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "pentatonic": (0, 2, 4, 7, 9),
}
# rhythm values in beats and their weights, per composer style
RHYTHMS = {
    "melody": ((0.5, 1.0, 1.5, 2.0, 0.25), (0.45, 0.3, 0.05, 0.1, 0.1)),
    "bass": ((1.0, 2.0, 0.5, 1.5), (0.5, 0.2, 0.2, 0.1)),
    "chords": ((1.0, 2.0, 0.5), (0.5, 0.3, 0.2)),
    "arpeggio": ((0.25, 0.5, 1.0), (0.4, 0.45, 0.15)),
}
LEFT, RIGHT, FOOT = 0, 1, 2


@dataclass(frozen=True)
class Note:
    onset: float      # seconds
    duration: float   # seconds
    pitch: int        # MIDI key (GM percussion key for drums/congas)
    velocity: int     # 1..127
    hand: int = RIGHT


def compose(inst: Instrument, duration: float, rng: np.random.Generator,
            style: str | None = None) -> list[Note]:
    """A seeded part of about ``duration`` seconds for ``inst``; never empty. ``style`` (default:
    the instrument's own) is one of ``instruments.MIXED_STYLES[inst.name]``."""
    style = style or inst.style
    if style not in ins.MIXED_STYLES[inst.name]:
        raise ValueError(f"{inst.name} is not composed in style {style!r}; "
                         f"its styles: {', '.join(ins.MIXED_STYLES[inst.name])}")
    beat = 60.0 / rng.uniform(75, 150)
    if style == "drums":
        notes = _drums(duration, beat, rng)
    elif style == "congas":
        notes = _congas(duration, beat, rng)
    else:
        notes = _tonal(inst, style, duration, beat, rng)
    notes = sorted((n for n in notes if n.onset < duration - 0.05), key=lambda n: (n.onset, n.pitch))
    assert notes, f"{inst.name}: the composer produced no notes"
    return notes


def scale_pitches(inst: Instrument, root: int, mode: str) -> np.ndarray:
    steps = SCALES[mode]
    return np.array([p for p in range(inst.low, inst.high + 1) if (p - root) % 12 in steps])


def _tonal(inst: Instrument, style: str, duration: float, beat: float, rng) -> list[Note]:
    mode = inst.scale if inst.scale != "major" else ("major", "minor")[int(rng.integers(2))]
    pitches = scale_pitches(inst, int(rng.integers(12)), mode)
    values, weights = RHYTHMS["melody" if inst.name == "piano" and style == "chords" else style]
    legato = rng.uniform(0.55, 0.95)
    deg = int(rng.integers(len(pitches) // 4, 3 * len(pitches) // 4 + 1))
    t, notes = rng.uniform(0.0, 0.6), []
    while t < duration:
        n_notes, v0 = int(rng.integers(4, 13)), rng.uniform(50, 110)
        slope = rng.uniform(-4, 4)
        for k in range(n_notes):
            value = float(rng.choice(values, p=weights)) * beat
            if rng.random() < 0.1:                      # a rest inside the phrase
                t += value
                continue
            deg = _step(deg, len(pitches), rng)
            vel = int(np.clip(v0 + slope * k + rng.normal(0, 6), 25, 127))
            notes += _voicing(inst, style, pitches, deg, t, value * legato, vel, beat)
            t += value
        t += float(rng.choice((1.0, 2.0, 3.0, 4.0))) * beat  # rest between phrases
    return notes


def _step(deg: int, n: int, rng) -> int:
    """One melodic step on the scale: mostly by step, sometimes a leap, reflected at the ends."""
    d = int(rng.choice((-4, -2, -1, 0, 1, 2, 4), p=(0.05, 0.15, 0.3, 0.05, 0.3, 0.1, 0.05)))
    nxt = deg + d
    if nxt < 0 or nxt >= n:
        nxt = deg - d
    return int(np.clip(nxt, 0, n - 1))


def _voicing(inst, style, pitches, deg, t, dur, vel, beat) -> list[Note]:
    """The notes sounded for one composed event: a single note, a strummed chord (12 ms
    between strings), a broken chord over the event's length (arpeggio style), or (piano) a
    melody note over a left-hand bass every other beat."""
    p = lambda d: int(pitches[int(np.clip(d, 0, len(pitches) - 1))])  # noqa: E731
    if style == "chords" and inst.name == "piano":
        out = [Note(t, dur, p(len(pitches) // 3 + (2 * deg) // 3), vel, RIGHT)]
        if int(round(t / beat)) % 2 == 0:
            out.append(Note(t, max(dur, beat), p(deg // 3), int(vel * 0.8), LEFT))
        return out
    if style == "chords":
        base = min(deg, len(pitches) - 5) if len(pitches) > 5 else 0
        return [Note(t + 0.012 * i, dur, p(base + 2 * i), vel, RIGHT) for i in range(3)]
    if style == "arpeggio" and dur >= 0.4 * beat:
        step = dur / 3
        return [Note(t + i * step, step, p(deg + 2 * i), int(vel * (1 - 0.1 * i)), RIGHT)
                for i in range(3)]
    return [Note(t, dur, p(deg), vel, RIGHT)]


def _drums(duration: float, beat: float, rng) -> list[Note]:
    """A kit groove: kick (foot), snare (left hand), hi-hat eighths (right hand), tom fills at
    phrase ends, a crash at phrase starts, and occasional breaks."""
    notes, t, bar = [], rng.uniform(0.0, 0.4), 0
    while t < duration:
        if rng.random() < 0.12:                       # a break: one silent bar
            t += 4 * beat
            bar += 1
            continue
        fill, accent = bar % 4 == 3, rng.uniform(70, 120)
        for e in range(8):
            te, v = t + e * beat / 2, int(np.clip(accent + rng.normal(0, 8), 30, 127))
            if fill and e >= 4:
                tom = (ins.TOM_HIGH, ins.TOM_MID, ins.TOM_LOW, ins.TOM_LOW)[e - 4]
                notes.append(Note(te, beat / 2, tom, v, LEFT if tom == ins.TOM_MID else RIGHT))
                continue
            if e in (0, 4) or (e == 5 and rng.random() < 0.3):
                notes.append(Note(te, beat / 2, ins.KICK, v, FOOT))
            if e in (2, 6):
                notes.append(Note(te, beat / 2, ins.SNARE, v, LEFT))
            cymbal = ins.CRASH if (e == 0 and bar % 4 == 0) else ins.HIHAT
            notes.append(Note(te, beat / 2, cymbal, int(v * 0.7), RIGHT))
        t += 4 * beat
        bar += 1
    return notes


def _congas(duration: float, beat: float, rng) -> list[Note]:
    """Sixteenth-grid conga patterns: low drum with the left hand, high drum (open or muted)
    with the right, a new pattern every two bars, occasional rests."""
    notes, t = [], rng.uniform(0.0, 0.4)
    while t < duration:
        if rng.random() < 0.15:
            t += 4 * beat
            continue
        grid = rng.random(16) < rng.uniform(0.3, 0.6)
        grid[0] = True
        kinds = rng.integers(0, 3, 16)
        for _ in range(2):
            for s in np.flatnonzero(grid):
                key = (ins.CONGA_MUTE_HIGH, ins.CONGA_OPEN_HIGH, ins.CONGA_LOW)[int(kinds[s])]
                hand = LEFT if key == ins.CONGA_LOW else RIGHT
                v = int(np.clip(rng.normal(95 if s % 4 == 0 else 75, 10), 30, 127))
                notes.append(Note(t + s * beat / 4, beat / 4, key, v, hand))
            t += 4 * beat
    return notes
