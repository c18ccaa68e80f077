"""A scene: the room, an optional unplayed instrument and one or two performers, each with
their own part; renders frame i and the performers' joints in pixels.

Placement: a solo performer stands (or sits) somewhere in the middle band of the frame at
60-88% of the frame height; duet performers are 45-62% tall, one in the left and one in the
right third (k=1 left, k=2 right). An unplayed instrument, when present, stands on the free side
(solo) or between and behind the two performers (duet), so the picture alone does not say which
instrument sounds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pipeline.data.synth import draw, holds, skeleton
from pipeline.data.synth.instruments import Instrument, instrument
from pipeline.data.synth.motion import Signals
from pipeline.data.synth.score import Note

# vertical extent of a figure in body units (head top to feet)
TOP, BOTTOM, HALF_WIDTH = -52.0, 50.0, 38.0


@dataclass
class Performer:
    inst: Instrument
    sig: Signals
    stance: skeleton.Stance
    origin: np.ndarray      # pixel of the hip centre
    scale: float            # pixels per body unit
    look: draw.Look
    sway: tuple[float, float, float]  # amplitude (units), period (s), phase

    def pose(self, t: float) -> tuple[np.ndarray, dict]:
        pz, geom = holds.pose(self.inst.hold, self.sig, t)
        a, period, phase = self.sway
        tx, ty = pz.torso
        pz = dataclasses.replace(pz, torso=(tx + a * np.sin(2 * np.pi * t / period + phase), ty))
        return skeleton.joints(pz, self.stance), geom


def limb_notes(inst: Instrument, notes: list[Note]) -> list[Note]:
    """The limb of each note as the motion model plays it (mallets: see holds.mallet_hands)."""
    return holds.mallet_hands(notes, inst.low, inst.high) if inst.hold == "mallets" else notes


class Scene:
    def __init__(self, classes: tuple[str, ...], parts: list[list[Note]], idle: str | None,
                 size: int, fps: int, rng: np.random.Generator):
        assert len(classes) == len(parts) in (1, 2), (classes, len(parts))
        self.size, self.fps = size, fps
        self.background = draw.background(size, rng)
        layout = _layout(len(classes), size, rng)
        if idle is not None:
            self._paint_idle(instrument(idle), layout, rng)
        self.performers = []
        for name, notes, (origin, scale) in zip(classes, parts, layout):
            inst = instrument(name)
            self.performers.append(Performer(
                inst, Signals(limb_notes(inst, notes), inst.low, inst.high),
                holds.stance(inst.hold, float(rng.uniform(-2, 3)), float(rng.uniform(8.5, 11.5))),
                origin, scale,
                draw.look(inst, rng),
                (float(rng.uniform(0.3, 1.2)), float(rng.uniform(2.5, 5.0)),
                 float(rng.uniform(0, 2 * np.pi)))))

    def _paint_idle(self, inst: Instrument, layout, rng) -> None:
        """An instrument nobody plays, in its resting geometry, painted into the background."""
        (origin, scale) = layout[0]
        s = scale * rng.uniform(0.55, 0.8)
        if len(layout) == 1:
            side = 0.85 if origin[0] < self.size / 2 else 0.15
            x = self.size * (side + rng.uniform(-0.04, 0.04))
        else:
            x = self.size * rng.uniform(0.45, 0.55)
        y = self.size - 42 * s - rng.uniform(0, 0.05) * self.size
        _, geom = holds.pose(inst.hold, Signals([], inst.low, inst.high), -1.0)
        cv = draw.Canvas(self.background, (x, y), s)
        draw.instrument(cv, inst.hold, geom, draw.look(inst, rng).instrument, "body")

    def render(self, i: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Frame ``i`` (H, W, 3) uint8 RGB and each performer's (68, 2) joints in pixels."""
        t = i / self.fps
        img = self.background.copy()
        out = []
        for p in self.performers:
            j, geom = p.pose(t)
            draw.figure(draw.Canvas(img, p.origin, p.scale), j, p.look, p.inst.hold, geom)
            out.append(p.origin + p.scale * j)
        assert img.shape == (self.size, self.size, 3) and all(j.shape == (68, 2) for j in out)
        return img, out


def _layout(n: int, size: int, rng) -> list[tuple[np.ndarray, float]]:
    """Hip-centre pixel and scale of each performer, left to right."""
    if n == 1:
        lo, hi, bands = 0.60, 0.88, ((0.3, 0.7),)
    else:
        lo, hi, bands = 0.45, 0.62, ((0.2, 0.3), (0.7, 0.8))
    out = []
    for a, b in bands:
        s = size * rng.uniform(lo, hi) / (BOTTOM - TOP)
        cx = np.clip(size * rng.uniform(a, b), HALF_WIDTH * s * 0.6, size - HALF_WIDTH * s * 0.6)
        ylo, yhi = -TOP * s + 0.02 * size, size * 0.99 - BOTTOM * s
        cy = rng.uniform(ylo, max(ylo, yhi))
        out.append((np.array([cx, cy]), float(s)))
    return out
