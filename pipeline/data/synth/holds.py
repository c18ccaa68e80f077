"""How each instrument is held and played: per frame, a :class:`Pose` and the instrument's
geometry (named points in body units, see pipeline.data.synth.skeleton) that pipeline.data.synth.draw
paints.

Motion families (the signals are those of pipeline.data.synth.motion):
- bowing (cello, erhu, violin): the bow hand slides along the bow direction with ``bow(t)``,
  reversing at every note; the other hand stops the string at a height set by the pitch.
- plucking/strumming (guitar, ukulele, banjo, electric bass, pipa): the picking hand sweeps
  across the strings with ``lift(t)`` and its fingers flick; the fretting hand slides along the
  neck with the pitch.
- keys (piano), mallets (xylophone), zither (guzheng): hands travel to the key, bar or string of
  their next note and drop onto it at the onset (``lift``); pressed fingers curl.
- accordion: the bellows open and close while notes sound (``travel``), right-hand fingers
  press at onsets at a height set by the pitch.
- winds (flute, clarinet, saxophone, bassoon, trumpet, tuba, bagpipe): the fingering (how many
  fingers close) follows the pitch, the instrument nods at each attack and drops a little, with
  the shoulders rising, while the player breathes in a rest.
- drums and congas: each limb travels to the drum of its next stroke and strikes it at the
  onset (``lift``); the right foot presses the kick pedal.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.data.synth.motion import Signals, finger_pattern
from pipeline.data.synth.score import FOOT, LEFT, RIGHT
from pipeline.data.synth.skeleton import Pose, Stance
from pipeline.data.synth import instruments as ins

SEATED = {"bow_cello", "bow_erhu", "pluck_pipa", "keys", "zither", "drums"}
MOUTH = np.array([0.0, -39.0])


def _u(x, y) -> np.ndarray:
    v = np.array([x, y], float)
    return v / np.hypot(*v)


def _perp(u) -> np.ndarray:
    return np.array([-u[1], u[0]])


def stance(hold: str, spread: float, shoulders: float) -> Stance:
    return Stance(seated=hold in SEATED, spread=spread, shoulders=shoulders)


def pose(hold: str, sig: Signals, t: float) -> tuple[Pose, dict]:
    """The pose and instrument geometry of a performer of motion family ``hold`` at time t."""
    return HOLDS[hold](sig, t)


def _frac(sig, t, hand=None) -> float:
    n = sig.note(t, hand)
    return 0.5 if n is None else sig.pitch_frac(n.pitch)


def _stop_curls(sig, t, hand=None) -> tuple:
    """The fretting/stopping hand: the pitch picks which finger is down."""
    n = sig.note(t, hand)
    k = 1 + (0 if n is None else n.pitch % 4)
    return tuple(0.85 if i == k else (0.3 if i == 0 else 0.45) for i in range(5))


# ---------------------------------------------------------------------------------- bowing

def _bowed(sig, t, contact, u, length, grip, neck_low, neck_high):
    """Bow hand along ``u`` by ``bow(t)``; the stopping hand on the neck line from ``neck_low``
    (high notes) to ``neck_high`` (low notes)."""
    p = sig.bow(t)
    wrist = contact - u * (grip + (length - 2 * grip) * (p + 1) / 2)
    f = _frac(sig, t)
    stop = neck_high + (neck_low - neck_high) * (0.15 + 0.7 * f)
    pz = Pose(l_wrist=tuple(stop + (2.0, 0)), r_wrist=tuple(wrist), l_angle=np.pi,
              r_angle=float(np.arctan2(u[1], u[0])) + 0.3, l_curl=_stop_curls(sig, t),
              r_curl=(0.4, 0.5, 0.5, 0.5, 0.6))
    return pz, {"bow_a": wrist, "bow_b": wrist + u * length, "stop": stop}


def hold_bow_cello(sig, t):
    low, high = np.array([2.5, -14.0]), np.array([6.5, -44.0])
    pz, g = _bowed(sig, t, np.array([2.0, -8.0]), _u(1, 0.06), 40.0, 4.0, low, high)
    return pz, g | {"centre": np.array([2.0, 4.0]), "top": high + (0.3, -2.0)}


def hold_bow_erhu(sig, t):
    base, top = np.array([7.0, -2.0]), np.array([8.0, -48.0])
    pz, g = _bowed(sig, t, np.array([7.0, -6.0]), _u(1, 0.0), 30.0, 3.0, base + (0.2, -12.0),
                   top + (0, 8.0))
    return pz, g | {"base": base, "top": top}


def hold_bow_violin(sig, t):
    v, d = np.array([9.0, -30.0]), _u(1, 0.18)
    u = _u(0.75, -0.66)
    p = sig.bow(t)
    contact = v - d * 1.5
    wrist = contact - u * (4 + 26 * (p + 1) / 2)
    f = _frac(sig, t)
    stop = v + d * (9 + 10 * (1 - f)) + _perp(d) * 1.5
    pz = Pose(l_wrist=tuple(stop), r_wrist=tuple(wrist), l_angle=-np.pi / 2,
              r_angle=float(np.arctan2(u[1], u[0])), l_curl=_stop_curls(sig, t),
              r_curl=(0.4, 0.5, 0.5, 0.5, 0.6), head=(1.8, 0.8))
    return pz, {"body": v, "dir": d, "bow_a": wrist, "bow_b": wrist + u * 34.0}


# ---------------------------------------------------------------------------------- plucking

PLUCKED = {  # body centre, neck direction, neck start, neck end, picking-hand offset
    "pluck_guitar": ((-4.0, 2.0), (1.0, -0.45), 17.0, 42.0, (0.0, -1.0)),
    "pluck_ukulele": ((-3.0, -14.0), (1.0, -0.3), 9.0, 24.0, (0.0, -1.0)),
    "pluck_banjo": ((-4.0, 0.0), (1.0, -0.5), 12.0, 44.0, (-2.0, -1.0)),
    "pluck_bass": ((-5.0, 4.0), (1.0, -0.38), 12.0, 46.0, (2.0, -1.0)),
    "pluck_pipa": ((0.0, 2.0), (0.25, -1.0), 14.0, 34.0, (-5.0, 2.0)),
}


def _plucked(name):
    centre, direction, n0, n1, pick = PLUCKED[name]

    def hold(sig, t):
        b, d = np.array(centre), _u(*direction)
        f = _frac(sig, t)
        stop = b + d * (n0 + 2 + (n1 - n0 - 6) * (1 - f)) + _perp(d) * -2.0
        lift = sig.lift(t, RIGHT)
        sweep = 12.0 if name != "pluck_pipa" else 4.0
        wrist = b + np.array(pick) + np.array([-3.0, 4.0 - sweep * lift])
        flick = 0.2 + 0.6 * (1 - lift)
        pz = Pose(l_wrist=tuple(stop), r_wrist=tuple(wrist), l_angle=float(np.arctan2(-d[0], d[1])),
                  r_angle=np.pi / 2 + 0.4, l_curl=_stop_curls(sig, t),
                  r_curl=(0.3, flick, flick, flick * 0.8, 0.5))
        return pz, {"centre": b, "dir": d, "neck0": n0, "neck1": n1}
    return hold


# ---------------------------------------------------------------------------------- keys, bars

def _strike_pos(sig, t, hand, x_of, rest_x):
    prev, nxt, a = sig.target_between(t, hand)
    if prev is None:
        return rest_x, 1.0, None
    x = (1 - a) * x_of(prev) + a * x_of(nxt)
    return x, sig.lift(t, hand), prev


def keyboard_x(frac: float, span: float) -> float:
    """Where a pitch sits along a keyboard or bar row seen from the audience: low notes at the
    player's left, which is the image right (+x)."""
    return span - 2 * span * frac


def hold_keys(sig, t):
    span = 28.0
    x_of = lambda n: keyboard_x(sig.pitch_frac(n.pitch), span)  # noqa: E731
    lx, ll, ln = _strike_pos(sig, t, LEFT, lambda n: max(x_of(n), -4.0), 14.0)
    rx, rl, rn = _strike_pos(sig, t, RIGHT, lambda n: min(x_of(n), 4.0), -14.0)
    press = lambda lift, n: tuple(0.2 if n is None or i != 1 + n.pitch % 4 else 0.2 + 0.7 * (1 - lift)  # noqa: E731
                                  for i in range(5))
    pz = Pose(l_wrist=(lx, -9.0 - 4 * ll), r_wrist=(rx, -9.0 - 4 * rl), l_angle=np.pi / 2,
              r_angle=np.pi / 2, l_curl=press(ll, ln), r_curl=press(rl, rn), head=(0.0, 1.5),
              torso=(0.25 * (lx + rx) / 2, 0.0))
    return pz, {"span": span}


MALLET_SPAN = 30.0


def hold_mallets(sig, t):
    x_of = lambda n: keyboard_x(sig.pitch_frac(n.pitch), MALLET_SPAN)  # noqa: E731
    out = {}
    for hand, rest in ((LEFT, 10.0), (RIGHT, -10.0)):
        x, lift, _ = _strike_pos(sig, t, hand, x_of, rest)
        out[hand] = np.array([x, -13.0 - 12.0 * lift])
    pz = Pose(l_wrist=tuple(out[LEFT]), r_wrist=tuple(out[RIGHT]), l_angle=np.pi / 2,
              r_angle=np.pi / 2, l_curl=(0.6,) * 5, r_curl=(0.6,) * 5, head=(0.0, 1.5),
              torso=(0.2 * float(out[LEFT][0] + out[RIGHT][0]) / 2, 0.0))
    return pz, {"span": MALLET_SPAN, "mallet_l": out[LEFT] + (0, 10.0),
                "mallet_r": out[RIGHT] + (0, 10.0)}


def mallet_hands(notes, low: int, high: int):
    """Mallet players alternate hands stroke by stroke, except where a bar is out of one hand's
    reach (the far side of the row)."""
    out, hand = [], RIGHT
    for n in notes:
        x = keyboard_x((n.pitch - low) / max(1, high - low), MALLET_SPAN)
        hand = RIGHT if x < -12 else LEFT if x > 12 else (LEFT if hand == RIGHT else RIGHT)
        out.append(dataclasses.replace(n, hand=hand))
    return out


def hold_zither(sig, t):
    x, lift, _ = _strike_pos(sig, t, RIGHT, lambda n: -30 + 26 * sig.pitch_frac(n.pitch), -16.0)
    flick = 0.2 + 0.7 * (1 - lift)
    bend = 2.0 * sig.attack(t)
    pz = Pose(l_wrist=(18.0, -9.0 + bend), r_wrist=(x, -10.0 - 5 * lift), l_angle=np.pi / 2,
              r_angle=np.pi / 2, l_curl=(0.3, 0.5, 0.5, 0.5, 0.5),
              r_curl=(flick, flick, 0.5, 0.6, 0.6), head=(0.0, 1.5))
    return pz, {}


# ---------------------------------------------------------------------------------- accordion

def hold_accordion(sig, t):
    bellows = 0.5 - 0.5 * np.cos(np.pi * sig.travel(t) / 2.5)
    right_x = -16.0
    left_x = 8.0 + 8.0 * bellows
    f = _frac(sig, t)
    lift = sig.lift(t, RIGHT)
    k = 1 + (sig.note(t).pitch % 4 if sig.note(t) else 0)
    curls = tuple(0.85 * (1 - lift) + 0.1 if i == k else 0.3 for i in range(5))
    pz = Pose(l_wrist=(left_x + 3.0, -18.0), r_wrist=(right_x - 1.0, -10.0 - 16.0 * f),
              l_angle=-np.pi / 2, r_angle=0.0, l_curl=(0.5,) * 5, r_curl=curls)
    return pz, {"right_x": right_x, "left_x": left_x, "bellows": bellows}


# ---------------------------------------------------------------------------------- winds

WINDS = {  # tube direction, tube length, its anchor relative to the mouth, and the left/right
    # hand at (distance along the tube from the anchor, distance across it)
    "wind_flute": ((-1.0, 0.06), 42.0, (0.0, 0.0), (10.0, 2.0), (26.0, 2.0)),
    "wind_clarinet": ((0.03, 1.0), 35.0, (0.0, 0.0), (11.0, 1.5), (23.0, 1.5)),
    "wind_sax": ((0.12, 1.0), 30.0, (0.0, 0.0), (10.0, -3.0), (22.0, -3.0)),
    "wind_bassoon": ((0.28, -0.96), 70.0, (-4.0, 45.0), (29.0, 0.0), (12.5, 0.0)),
    "wind_trumpet": ((-0.8, 0.6), 20.0, (0.0, 0.0), (10.0, -3.0), (8.0, 3.0)),
    "wind_tuba": ((-0.1, 1.0), 16.0, (0.0, 0.0), (24.0, 10.0), (22.0, -9.0)),
    "wind_bagpipe": ((0.05, 1.0), 36.0, (0.0, 0.0), (12.0, 1.0), (26.0, 1.0)),
}
GRIP = 4.0   # wrist distance from the tube: the fingers lie across it


def _wind(name):
    axis0, length, anchor, lpos, rpos = WINDS[name]

    def hold(sig, t):
        rest, att = sig.rest(t), sig.attack(t)
        tilt = (0.05 * att + 0.08 * rest) * (-1 if axis0[0] < 0 else 1)
        ang = np.arctan2(axis0[1], axis0[0]) + tilt
        u = np.array([np.cos(ang), np.sin(ang)])
        m = MOUTH + (0, 0.8 * att)
        a = m + anchor
        upright = abs(u[1]) > 0.5
        grip = {"l": np.array([GRIP, 0.0]), "r": np.array([-GRIP, 0.0])} if upright else \
            {"l": np.array([0.0, GRIP]), "r": np.array([0.0, GRIP])}
        wrist = {k: a + u * s + _perp(u) * side + grip[k] for k, (s, side) in (("l", lpos), ("r", rpos))}
        fingers = finger_pattern(_frac(sig, t), 6)
        pz = Pose(l_wrist=tuple(wrist["l"]), r_wrist=tuple(wrist["r"]),
                  l_angle=np.pi if upright else -np.pi / 2, r_angle=0.0 if upright else -np.pi / 2,
                  l_curl=(0.4,) + fingers[:3] + (0.4,), r_curl=(0.4,) + fingers[3:] + (0.4,),
                  head=(0.0, 0.8 * att), torso=(0.0, -1.2 * rest))
        return pz, {"mouth": m, "anchor": a, "dir": u, "length": length}
    return hold


# ---------------------------------------------------------------------------------- percussion

DRUM_AT = {ins.SNARE: (9.0, -3.0), ins.HIHAT: (-20.0, -10.0), ins.CRASH: (-24.0, -24.0),
           ins.TOM_HIGH: (-4.0, -8.0), ins.TOM_MID: (6.0, -8.0), ins.TOM_LOW: (-15.0, 2.0),
           ins.KICK: (0.0, 18.0)}
CONGA_AT = {ins.CONGA_MUTE_HIGH: (-9.0, -3.0), ins.CONGA_OPEN_HIGH: (-9.0, -3.0),
            ins.CONGA_LOW: (10.0, -2.0)}


def _struck(sig, t, where, rest, height):
    out = {}
    for hand in (LEFT, RIGHT):
        prev, nxt, a = sig.target_between(t, hand)
        if prev is None:
            out[hand] = (np.array(rest[hand]), 1.0, None)
            continue
        p = (1 - a) * np.array(where[prev.pitch]) + a * np.array(where[nxt.pitch])
        lift = sig.lift(t, hand)
        out[hand] = (p + (0, -height - 12.0 * lift), lift, prev)
    return out


def hold_drums(sig, t):
    h = _struck(sig, t, DRUM_AT, {LEFT: (9.0, -3.0), RIGHT: (-20.0, -10.0)}, 8.0)
    foot = 3.0 * sig.lift(t, FOOT)
    pz = Pose(l_wrist=tuple(h[LEFT][0]), r_wrist=tuple(h[RIGHT][0]), l_angle=np.pi / 2 - 0.5,
              r_angle=np.pi / 2 + 0.5, l_curl=(0.7,) * 5, r_curl=(0.7,) * 5, r_ankle_lift=foot)
    return pz, {"stick_l": h[LEFT][0] + (-3.0, 9.0), "stick_r": h[RIGHT][0] + (3.0, 9.0)}


def hold_congas(sig, t):
    h = _struck(sig, t, CONGA_AT, {LEFT: (10.0, -2.0), RIGHT: (-9.0, -3.0)}, 2.0)
    shape = {None: 0.3, ins.CONGA_MUTE_HIGH: 0.6, ins.CONGA_OPEN_HIGH: 0.05, ins.CONGA_LOW: 0.1}
    cl = shape[h[LEFT][2].pitch if h[LEFT][2] else None]
    cr = shape[h[RIGHT][2].pitch if h[RIGHT][2] else None]
    pz = Pose(l_wrist=tuple(h[LEFT][0]), r_wrist=tuple(h[RIGHT][0]), l_angle=np.pi / 2 + 0.3,
              r_angle=np.pi / 2 - 0.3, l_curl=(0.2, cl, cl, cl, cl), r_curl=(0.2, cr, cr, cr, cr))
    return pz, {}


HOLDS = {
    "bow_cello": hold_bow_cello, "bow_erhu": hold_bow_erhu, "bow_violin": hold_bow_violin,
    **{name: _plucked(name) for name in PLUCKED},
    "keys": hold_keys, "mallets": hold_mallets, "zither": hold_zither,
    "accordion": hold_accordion,
    **{name: _wind(name) for name in WINDS},
    "drums": hold_drums, "congas": hold_congas,
}
assert {i.hold for i in ins.INSTRUMENTS.values()} <= set(HOLDS)
