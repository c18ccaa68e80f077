"""Painting a frame with OpenCV: background and clutter, the performer figures and their
instruments (anti-aliased, sub-pixel coordinates).

A :class:`Canvas` maps body units (pipeline.data.synth.skeleton) to pixels: ``origin`` is the pixel
of the hip centre and ``scale`` the pixels per unit. Instruments are drawn in two layers:
``body`` (in front of the torso, behind the arms) and ``front`` (bows, sticks and mallets, held
in the hands).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.data.synth import holds as hl
from pipeline.data.synth import instruments as ins
from pipeline.data.synth import skeleton as sk

SHIFT = 4                       # cv2 fixed-point bits for sub-pixel drawing
ONE = 1 << SHIFT
AA = cv2.LINE_AA
DARK = (25, 20, 18)
LIGHT = (235, 232, 220)
METAL = (175, 175, 185)
GOLD = (215, 175, 60)


@dataclass(frozen=True)
class Look:
    """Colours and build of one performer and the jittered base colour of their instrument."""

    skin: tuple
    hair: tuple
    shirt: tuple
    trousers: tuple
    instrument: tuple
    build: float = 1.0         # limb thickness factor
    long_sleeves: bool = False


class Canvas:
    def __init__(self, img: np.ndarray, origin, scale: float):
        self.img, self.origin, self.s = img, np.asarray(origin, float), float(scale)

    def px(self, p) -> np.ndarray:
        return self.origin + self.s * np.asarray(p, float)

    def _fx(self, p):
        q = self.px(p)
        return int(round(q[0] * ONE)), int(round(q[1] * ONE))

    def w(self, units: float) -> int:
        return max(1, int(round(units * self.s)))

    def line(self, a, b, colour, width):
        cv2.line(self.img, self._fx(a), self._fx(b), colour, self.w(width), AA, SHIFT)

    def poly(self, pts, colour, closed=True, width=None):
        arr = np.array([self._fx(p) for p in pts], np.int32).reshape(-1, 1, 2)
        if width is None:
            cv2.fillPoly(self.img, [arr], colour, AA, SHIFT)
        else:
            cv2.polylines(self.img, [arr], closed, colour, self.w(width), AA, SHIFT)

    def ellipse(self, c, rx, ry, colour, angle=0.0, width=None):
        axes = (max(1, int(round(rx * self.s * ONE))), max(1, int(round(ry * self.s * ONE))))
        th = -1 if width is None else self.w(width)
        cv2.ellipse(self.img, self._fx(c), axes, float(np.degrees(angle)), 0, 360, colour, th, AA,
                    SHIFT)

    def circle(self, c, r, colour, width=None):
        self.ellipse(c, r, r, colour, 0.0, width)


def shade(colour, f: float) -> tuple:
    return tuple(int(np.clip(c * f, 0, 255)) for c in colour)


# ------------------------------------------------------------------------------ background

def background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A room: a wall gradient, a floor, clutter shapes (furniture, frames, lamps, stripes) and a
    fixed grain, all random per video."""
    wall_a, wall_b, floor_c = (rng.integers(30, 230, 3) for _ in range(3))
    horizon = int(size * rng.uniform(0.55, 0.8))
    ramp = np.linspace(0, 1, size)[:, None, None]
    img = (wall_a * (1 - ramp) + wall_b * ramp).astype(np.float32) * np.ones((1, size, 1))
    img[horizon:] = floor_c * np.linspace(0.8, 1.1, size - horizon)[:, None, None]
    img = np.clip(img + rng.normal(0, 3.0, img.shape), 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img)
    for _ in range(int(rng.integers(3, 11))):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = (int(v) for v in rng.integers(0, size, 2))
        a, b = (int(v) for v in rng.integers(size // 20, size // 4, 2))
        kind = int(rng.integers(4))
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + a, y + b), c, -1, AA)
        elif kind == 1:
            cv2.rectangle(img, (x, y), (x + a, y + b), c, int(rng.integers(2, 6)), AA)
        elif kind == 2:
            cv2.circle(img, (x, y), a // 2, c, -1, AA)
        else:
            cv2.line(img, (x, 0), (x + a, size), c, int(rng.integers(1, 5)), AA)
    return img


def look(inst: ins.Instrument, rng: np.random.Generator) -> Look:
    skins = ((241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 60, 40),
             (255, 219, 172))
    skin = skins[int(rng.integers(len(skins)))]
    shirt = tuple(int(v) for v in rng.integers(20, 236, 3))
    trousers = tuple(int(v) for v in rng.integers(10, 120, 3))
    hair = tuple(int(v) for v in rng.integers(10, 90, 3))
    jitter = rng.integers(-20, 21, 3)
    instrument = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(inst.colour, jitter))
    return Look(skin, hair, shirt, trousers, instrument, float(rng.uniform(0.8, 1.25)),
                bool(rng.random() < 0.5))


# ------------------------------------------------------------------------------ the figure

def figure(cv: Canvas, j: np.ndarray, lk: Look, hold: str, geom: dict) -> None:
    """A performer: legs, torso, head, the instrument, then arms and hands over it."""
    for a, b in ((sk.L_HIP, sk.L_KNEE), (sk.L_KNEE, sk.L_ANKLE), (sk.R_HIP, sk.R_KNEE),
                 (sk.R_KNEE, sk.R_ANKLE)):
        cv.line(j[a], j[b], lk.trousers, 5.0 * lk.build)
    for ank, big, small, heel in ((sk.L_ANKLE, sk.L_BIG_TOE, sk.L_SMALL_TOE, sk.L_HEEL),
                                  (sk.R_ANKLE, sk.R_BIG_TOE, sk.R_SMALL_TOE, sk.R_HEEL)):
        cv.poly([j[ank], j[small], j[big], j[heel]], DARK)
        cv.poly([j[ank], j[small], j[big], j[heel]], DARK, width=1.5)
    torso = [j[sk.L_SHOULDER] + (1.5, -0.5), j[sk.L_HIP] + (1.5, 2), j[sk.R_HIP] + (-1.5, 2),
             j[sk.R_SHOULDER] + (-1.5, -0.5)]
    cv.poly(torso, lk.shirt)
    cv.line(j[sk.NECK], j[sk.HIP], shade(lk.shirt, 0.8), 1.0)
    cv.line(j[sk.NECK], (j[sk.NOSE] + j[sk.NECK]) / 2, lk.skin, 3.5)
    centre = (j[sk.HEAD] + j[sk.NOSE]) / 2 + (0, 0.8)
    cv.ellipse(centre, 5.6, 7.0, lk.skin)
    cv.ellipse(centre + (0, -3.6), 5.9, 3.8, lk.hair)
    for e in (sk.L_EYE, sk.R_EYE):
        cv.circle(j[e], 0.7, DARK)
    cv.circle(j[sk.NOSE], 0.6, shade(lk.skin, 0.75))
    instrument(cv, hold, geom, lk.instrument, "body")
    for sh, el, wr in ((sk.L_SHOULDER, sk.L_ELBOW, sk.L_WRIST), (sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST)):
        cv.line(j[sh], j[el], lk.shirt, 4.0 * lk.build)
        cv.line(j[el], j[wr], lk.shirt if lk.long_sleeves else lk.skin, 3.0 * lk.build)
    for first in (sk.L_HAND, sk.R_HAND):
        h = j[first: first + 21]
        cv.poly([h[0], h[1], h[5], h[17]], lk.skin)
        for a, b in sk.HAND_EDGES:
            cv.line(h[a], h[b], lk.skin, 1.1)
    instrument(cv, hold, geom, lk.instrument, "front")


# ------------------------------------------------------------------------------ instruments

def instrument(cv: Canvas, hold: str, g: dict, col: tuple, layer: str) -> None:
    """Paint the instrument of motion family ``hold`` with geometry ``g`` (one layer)."""
    if hold.startswith("bow_"):
        if layer == "body":
            {"bow_cello": _cello, "bow_erhu": _erhu, "bow_violin": _violin}[hold](cv, g, col)
        else:
            cv.line(g["bow_a"], g["bow_b"], (90, 55, 30), 0.9)
            cv.line(g["bow_a"] + (0, 0.9), g["bow_b"] + (0, 0.9), LIGHT, 0.5)
    elif hold.startswith("pluck_"):
        if layer == "body":
            _plucked(cv, hold, g, col)
    elif hold.startswith("wind_"):
        if layer == "body":
            WIND_DRAW[hold](cv, g, col)
    elif hold in ("drums", "congas"):
        if layer == "body":
            (_drums if hold == "drums" else _congas)(cv, col)
        elif hold == "drums":
            for k, side in (("stick_l", -1), ("stick_r", 1)):
                cv.line(g[k] + (side * -3.0, -9.0), g[k], (225, 195, 140), 0.9)
    elif hold == "mallets":
        if layer == "body":
            _xylophone(cv, g, col)
        else:
            for k in ("mallet_l", "mallet_r"):
                cv.line(g[k] + (0, -10.0), g[k], (200, 170, 120), 0.7)
                cv.circle(g[k], 1.5, (120, 30, 120))
    elif layer == "body":
        {"keys": _piano, "zither": _guzheng, "accordion": _accordion}[hold](cv, g, col)


def _cello(cv, g, col):
    c, top = g["centre"], g["top"]
    cv.line(c + (0, 14), c + (0, 28), METAL, 0.8)
    cv.ellipse(c + (0, 4), 12, 12, col)
    cv.ellipse(c + (0, -11), 9.5, 9, col)
    cv.ellipse(c + (0, -3.5), 7.5, 4, col)
    for x in (-4.5, 4.5):
        cv.line(c + (x, -4), c + (x, 3), DARK, 0.6)
    cv.line(c + (0, -4), top, DARK, 2.4)
    cv.circle(top + (0.2, -1.5), 1.8, shade(col, 0.7))
    cv.line(c + (0, 10), top, LIGHT, 0.35)


def _erhu(cv, g, col):
    base, top = g["base"], g["top"]
    cv.poly([base + (-4, -3), base + (4, -3), base + (4, 3), base + (-4, 3)], col)
    cv.ellipse(base + (4, 0), 1.2, 3, shade(col, 0.6))
    cv.line(base, top, shade(col, 0.8), 1.2)
    for y in (4.0, 7.0):
        cv.line(top + (-3, y), top + (3, y), DARK, 0.9)


def _violin(cv, g, col):
    v, d = g["body"], g["dir"]
    ang = float(np.arctan2(d[1], d[0]))
    cv.ellipse(v - d * 3, 5.2, 4.4, col, ang)
    cv.ellipse(v + d * 3, 4.3, 3.7, col, ang)
    cv.line(v - d * 3, v + d * 19, DARK, 1.3)
    cv.circle(v + d * 20.5, 1.3, shade(col, 0.7))
    cv.ellipse(v - d * 5, 2.0, 1.6, DARK, ang)


def _plucked(cv, hold, g, col):
    b, d = g["centre"], g["dir"]
    ang = float(np.arctan2(d[1], d[0]))
    n0, n1 = g["neck0"], g["neck1"]
    neck = (120, 70, 35) if hold != "pluck_bass" else (200, 160, 110)
    cv.line(b + d * (n0 - 4), b + d * n1, neck, 2.6 if hold != "pluck_ukulele" else 1.8)
    cv.poly([b + d * n1 + _p(d) * 1.8, b + d * (n1 + 6) + _p(d) * 2.2,
             b + d * (n1 + 6) - _p(d) * 2.2, b + d * n1 - _p(d) * 1.8], DARK)
    if hold == "pluck_guitar":
        cv.circle(b, 11, col)
        cv.circle(b + d * 9, 8.5, col)
        cv.circle(b + d * 5, 3.5, DARK)
    elif hold == "pluck_ukulele":
        cv.circle(b, 6.2, col)
        cv.circle(b + d * 5, 5.0, col)
        cv.circle(b + d * 3, 1.9, DARK)
    elif hold == "pluck_banjo":
        cv.circle(b, 12, METAL)
        cv.circle(b, 10.5, col)
    elif hold == "pluck_bass":
        cv.ellipse(b, 11, 8, col, ang + 0.3)
        cv.poly([b + d * 4 + _p(d) * 7, b + d * 14 + _p(d) * 8, b + d * 6 + _p(d) * 2], col)
        cv.poly([b + d * 4 - _p(d) * 7, b + d * 11 - _p(d) * 7, b + d * 6 - _p(d) * 2], col)
        for s in (-4.0, 2.0):
            cv.line(b + d * s + _p(d) * 3, b + d * s - _p(d) * 3, DARK, 1.3)
    else:  # pipa: a pear-shaped body along the neck
        cv.ellipse(b + d * 2, 14, 9.5, col, ang)
        cv.poly([b + d * 10 + _p(d) * 5, b + d * n0 + _p(d) * 2, b + d * n0 - _p(d) * 2,
                 b + d * 10 - _p(d) * 5], col)
        for s in (16.0, 20.0, 24.0, 28.0):
            cv.line(b + d * s + _p(d) * 1.8, b + d * s - _p(d) * 1.8, LIGHT, 0.6)
    cv.line(b - d * 6, b + d * (n1 + 5), LIGHT, 0.3)


def _p(d):
    return np.array([-d[1], d[0]])


def _piano(cv, g, col):
    s = g["span"]
    cv.poly([(-s - 5, -1), (s + 5, -1), (s + 5, 24), (-s - 5, 24)], col)
    cv.poly([(-s - 2, -6), (s + 2, -6), (s + 2, -1), (-s - 2, -1)], LIGHT)
    xs = np.linspace(-s - 2, s + 2, 36)
    for i, x in enumerate(xs[1:-1]):
        cv.line((x, -6), (x, -1), (120, 120, 120), 0.2)
        if i % 7 not in (2, 6):
            cv.line((x, -6), (x, -3.5), DARK, 0.9)
    for x in (-s - 3, s + 3):
        cv.line((x, 24), (x, 40), shade(col, 0.8), 2.0)


def _xylophone(cv, g, col):
    s = g["span"]
    cv.line((-s - 3, 2), (s + 3, 0), DARK, 1.2)
    for x in (-s - 2, s + 2):
        cv.line((x, 1), (x, 40), DARK, 1.2)
    n = 15
    for i, x in enumerate(np.linspace(-s, s, n)):
        h = 5.0 + 4.0 * i / (n - 1)  # long, low bars at the player's left (image right)
        cv.poly([(x - 1.6, -4), (x + 1.6, -4), (x + 1.6, -4 + h), (x - 1.6, -4 + h)],
                shade(col, 0.85 + 0.3 * (i % 2)))


def _guzheng(cv, g, col):
    a, b = np.array([-40.0, -7.0]), np.array([40.0, -3.0])
    cv.poly([a, b, b + (0, 5), a + (0, 5)], col)
    cv.poly([a + (0, 5), b + (0, 5), b + (0, 7), a + (0, 7)], shade(col, 0.6))
    for k in range(8):
        off = -0.5 + 0.6 * k
        cv.line(a + (2, off), b + (-2, off), LIGHT, 0.25)
        x = -20 + 5.5 * k
        y = -7 + 4 * (x + 40) / 80 + off
        cv.poly([(x - 0.8, y + 0.9), (x + 0.8, y + 0.9), (x, y - 0.4)], LIGHT)
    for x in (-34.0, 34.0):
        cv.line((x, 0), (x + 3 * np.sign(x), 26), shade(col, 0.5), 1.2)


def _accordion(cv, g, col):
    rx, lx = g["right_x"], g["left_x"]
    cv.poly([(rx - 5, -34), (rx + 1, -34), (rx + 1, -4), (rx - 5, -4)], LIGHT)
    for y in np.linspace(-32, -6, 9):
        cv.line((rx - 5, y), (rx - 2, y), DARK, 0.8)
    folds = 9
    xs = np.linspace(rx + 1, lx, folds + 1)
    for i in range(folds):
        cv.poly([(xs[i], -33), (xs[i + 1], -34), (xs[i + 1], -4), (xs[i], -5)],
                col if i % 2 == 0 else shade(col, 0.55))
    cv.poly([(lx, -35), (lx + 6, -35), (lx + 6, -3), (lx, -3)], shade(col, 0.8))
    for y in np.linspace(-31, -8, 6):
        cv.circle((lx + 3, y), 0.8, LIGHT)


def _tube(cv, m, u, a, b, col, width):
    cv.line(m + u * a, m + u * b, col, width)


def _flute(cv, g, col):
    m, u = g["mouth"], g["dir"]
    _tube(cv, m, u, -3, g["length"], col, 1.5)
    for s in (8, 12, 16, 20, 24, 28):
        cv.circle(m + u * s, 0.5, DARK)


def _clarinet(cv, g, col):
    m, u = g["mouth"], g["dir"]
    _tube(cv, m, u, 1, g["length"], col, 2.3)
    e = m + u * g["length"]
    cv.poly([e + _p(u) * 1.2, e + u * 4 + _p(u) * 3, e + u * 4 - _p(u) * 3, e - _p(u) * 1.2], col)
    for s in (8, 13, 18, 23, 28):
        cv.circle(m + u * s, 0.6, METAL)


def _sax(cv, g, col):
    m, u = g["mouth"], g["dir"]
    cv.line(m, m + u * 3 + _p(u) * 3, col, 1.0)
    start, end = m + u * 3 + _p(u) * 3, m + u * g["length"] + _p(u) * 3
    cv.poly([start + _p(u) * 1, end + _p(u) * 2.2, end - _p(u) * 2.2, start - _p(u) * 1], col)
    bell = end - _p(u) * 6 - u * 9
    cv.line(end, end - _p(u) * 4 + u * 1.5, col, 4.0)
    cv.poly([end - _p(u) * 4, bell + _p(u) * 1.5, bell - _p(u) * 6, end - _p(u) * 7], col)
    cv.ellipse(bell - _p(u) * 2.2, 4.2, 1.6, shade(col, 0.6), float(np.arctan2(-u[1], -u[0])) + 0.3)
    for s in (10, 14, 18, 22):
        cv.circle(m + u * s + _p(u) * 3, 0.7, shade(col, 0.7))


def _bassoon(cv, g, col):
    a, u = g["anchor"], g["dir"]
    top = a + u * g["length"]
    cv.line(a, top, col, 3.6)
    cv.circle(top, 1.9, LIGHT)
    cv.line(g["mouth"], a + u * 44.0, METAL, 0.6)


def _trumpet(cv, g, col):
    m, u = g["mouth"], g["dir"]
    _tube(cv, m, u, 0, g["length"], col, 1.2)
    _tube(cv, m + _p(u) * 2.5, u, 4, g["length"] - 2, col, 0.9)
    for s in (9.0, 11.0, 13.0):
        cv.line(m + u * s - _p(u) * 2, m + u * s + _p(u) * 4, col, 1.1)
    e = m + u * g["length"]
    ang = float(np.arctan2(u[1], u[0]))
    cv.ellipse(e, 2.2, 5.5, col, ang)
    cv.ellipse(e + u * 0.6, 1.2, 4.0, shade(col, 0.55), ang)


def _tuba(cv, g, col):
    m, u = g["mouth"], g["dir"]
    _tube(cv, m, u, 0, g["length"], col, 1.2)
    c = m + u * (g["length"] + 11)
    cv.poly([c + (-3, -4), c + (-9, -36), c + (-20, -38), c + (-11, -2)], col)
    cv.ellipse(c + (-14.5, -37), 6.0, 2.0, shade(col, 0.5), -0.2)
    cv.ellipse(c, 11, 13, col)
    cv.ellipse(c, 6, 8, shade(col, 0.7), 0.0, 1.2)
    for k in range(3):
        cv.line(c + (-10 + 2.2 * k, -6), c + (-10 + 2.2 * k, 1), METAL, 1.0)


def _bagpipe(cv, g, col):
    m, u = g["mouth"], g["dir"]
    bag = np.array([13.0, -21.0])
    for tip in ((25.0, -62.0), (19.0, -66.0), (12.0, -61.0)):
        cv.line(bag + (-1, -5), tip, DARK, 1.1)
        cv.line(np.array(tip) + (0, 1.5), tip, LIGHT, 1.4)
    cv.ellipse(bag, 9.0, 6.5, col, -0.4)
    for k in (-4.0, 0.0, 4.0):
        cv.line(bag + (k - 3, -5), bag + (k + 3, 5), shade(col, 0.5), 0.5)
    cv.line(m, bag + (-6, -4), DARK, 0.7)
    _tube(cv, m, u, 8, g["length"], DARK, 1.5)


WIND_DRAW = {"wind_flute": _flute, "wind_clarinet": _clarinet, "wind_sax": _sax,
             "wind_bassoon": _bassoon, "wind_trumpet": _trumpet, "wind_tuba": _tuba,
             "wind_bagpipe": _bagpipe}


def _drum(cv, c, r, h, shell, head=LIGHT):
    c = np.asarray(c, float)
    cv.poly([c + (-r, 0), c + (r, 0), c + (r, h), c + (-r, h)], shell)
    cv.ellipse(c + (0, h), r, r * 0.3, shell)
    cv.ellipse(c, r, r * 0.3, head)


def _drums(cv, col):
    cv.circle(hl.DRUM_AT[ins.KICK], 15, col)
    cv.circle(hl.DRUM_AT[ins.KICK], 12.5, LIGHT)
    for key, r, h in ((ins.TOM_LOW, 7.0, 12.0), (ins.TOM_HIGH, 5.0, 5.0), (ins.TOM_MID, 5.5, 5.5),
                      (ins.SNARE, 6.5, 4.0)):
        c = np.array(hl.DRUM_AT[key]) + (0, 2.0)
        _drum(cv, c, r, h, col)
    for key, r in ((ins.HIHAT, 7.0), (ins.CRASH, 9.0)):
        c = np.array(hl.DRUM_AT[key]) + (0, 2.0)
        cv.line(c, (c[0], 40.0), METAL, 0.6)
        cv.ellipse(c, r, 1.4, GOLD)


def _congas(cv, col):
    for key, r in ((ins.CONGA_LOW, 8.0), (ins.CONGA_OPEN_HIGH, 7.0)):
        x, y = hl.CONGA_AT[key]
        y += 1.5
        cv.poly([(x - r, y), (x - r - 1.8, y + 16), (x - r + 1.5, 40), (x + r - 1.5, 40),
                 (x + r + 1.8, y + 16), (x + r, y)], col)
        cv.line((x - r - 1.5, y + 10), (x + r + 1.5, y + 10), METAL, 0.6)
        cv.ellipse((x, y), r, 2.2, (225, 205, 170))
