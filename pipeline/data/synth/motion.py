"""Timing signals that drive the playing motion from a performer's own note events.

Every moving part of a performer is a function of these signals at the frame time, so the pose
carries the timing of the part (what the paper's pose stream is for, section 3.1):

- ``lift(t, hand)``: 0 at each onset of that limb (the stick, mallet, hand or pick is at the
  string or drum head), rising to 1 within ``TAU`` s after it and falling back to 0 over the
  ``TAU`` s before the next onset; the amplitude grows with the note's velocity.
- ``bow(t)``: bow position in [-1, 1]; each note draws the bow once from one end to the other
  over its duration and the direction reverses at every new note; rests hold it still.
- ``note(t, hand)``: the note sounding (or last started) for that limb: its pitch picks the
  fingering, fret, key or bar position.
- ``attack(t)``: an exponential pulse at each onset (wind players' articulation nod).
- ``rest(t)``: 0 while notes sound, rising to 1 within 0.3 s of silence (breathing).
- ``travel(t)``: seconds of sound so far (accordion bellows move only while notes sound).
"""
from __future__ import annotations

import bisect

import numpy as np

from pipeline.data.synth.score import Note

TAU = 0.15


class Signals:
    def __init__(self, notes: list[Note], low: int, high: int):
        self.notes = sorted(notes, key=lambda n: (n.onset, n.pitch))
        self.low, self.high = low, high
        self.by_hand: dict[int, list[Note]] = {}
        for n in self.notes:
            self.by_hand.setdefault(n.hand, []).append(n)
        self.onsets_by_hand = {h: [n.onset for n in ns] for h, ns in self.by_hand.items()}
        # distinct onsets (a chord is one stroke) for bowing and articulation
        self.strokes: list[Note] = []
        for n in self.notes:
            if not self.strokes or n.onset - self.strokes[-1].onset > 0.03:
                self.strokes.append(n)
        self.stroke_onsets = [n.onset for n in self.strokes]
        self.intervals = _merge([(n.onset, n.onset + n.duration) for n in self.notes])

    def pitch_frac(self, pitch: int) -> float:
        return float(np.clip((pitch - self.low) / max(1, self.high - self.low), 0.0, 1.0))

    def note(self, t: float, hand: int | None = None) -> Note | None:
        ns = self.notes if hand is None else self.by_hand.get(hand, [])
        ons = [n.onset for n in ns] if hand is None else self.onsets_by_hand.get(hand, [])
        if not ns:
            return None
        i = bisect.bisect_right(ons, t) - 1
        return ns[max(i, 0)]

    def lift(self, t: float, hand: int) -> float:
        ons = self.onsets_by_hand.get(hand, [])
        if not ons:
            return 1.0
        i = bisect.bisect_right(ons, t)
        since = t - ons[i - 1] if i > 0 else np.inf
        until = ons[i] - t if i < len(ons) else np.inf
        near = self.by_hand[hand][i - 1 if since <= until else i]
        amp = 0.5 + 0.5 * near.velocity / 127.0
        return float(min(1.0, since / TAU, until / TAU) * amp)

    def target_between(self, t: float, hand: int) -> tuple[Note | None, Note | None, float]:
        """The limb's previous and next notes and how far (0..1) it has travelled between them."""
        ns, ons = self.by_hand.get(hand, []), self.onsets_by_hand.get(hand, [])
        if not ns:
            return None, None, 0.0
        i = bisect.bisect_right(ons, t)
        prev, nxt = (ns[i - 1] if i > 0 else None), (ns[i] if i < len(ns) else None)
        if prev is None or nxt is None:
            return prev or nxt, prev or nxt, 0.0
        return prev, nxt, float(np.clip((t - prev.onset) / max(1e-3, nxt.onset - prev.onset), 0, 1))

    def bow(self, t: float) -> float:
        if not self.strokes:
            return 0.0
        i = bisect.bisect_right(self.stroke_onsets, t) - 1
        if i < 0:
            return -1.0
        n = self.strokes[i]
        frac = float(np.clip((t - n.onset) / max(n.duration, 0.05), 0.0, 1.0))
        s = 1.0 if i % 2 == 0 else -1.0
        return s * (-1.0 + 2.0 * frac)

    def attack(self, t: float) -> float:
        i = bisect.bisect_right(self.stroke_onsets, t) - 1
        if i < 0:
            return 0.0
        n = self.strokes[i]
        return float(np.exp(-(t - n.onset) / 0.12) * n.velocity / 127.0)

    def rest(self, t: float) -> float:
        last_end = -np.inf
        for a, b in self.intervals:
            if a <= t < b:
                return 0.0
            if b <= t:
                last_end = b
        return float(np.clip((t - last_end) / 0.3, 0.0, 1.0)) if np.isfinite(last_end) else 1.0

    def travel(self, t: float) -> float:
        return float(sum(max(0.0, min(b, t) - a) for a, b in self.intervals if a < t))


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def finger_pattern(frac: float, n: int = 4) -> tuple[float, ...]:
    """Wind fingering: the lower the note, the more fingers close (curl 0.85 closed, 0.1 open)."""
    closed = int(round((1.0 - frac) * n))
    return tuple(0.85 if k < closed else 0.1 for k in range(n))
