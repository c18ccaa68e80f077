"""The dataset plan: which videos exist, deterministically from (SynthParams, seed).

``videos_per_class`` solos for every MUSIC21 class and ``duets`` duets, of which a
``same_class_duets`` share pair two performers of one class; an ``unplayed_instrument`` share of
all scenes hold an extra instrument nobody plays. Each video gets an 11-character YouTube-style
ID (URL-safe base64 of a SHA-256 of the seed and the video's slot) and its own seed.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from pipeline.classes import CLASSES
from pipeline.params import SynthParams

SOLO_LIST, DUET_LIST = "MUSIC21_solo_videos.json", "MUSIC21_duet_videos.json"
LIST_VERSION = "synthetic-1"


@dataclass(frozen=True)
class VideoSpec:
    video_id: str
    classes: tuple[str, ...]       # one class (solo) or two, left performer first (duet)
    kind: Literal["solo", "duet"]
    seed: int                      # everything about the video derives from it
    idle: Optional[str] = None     # class of an instrument in the scene that nobody plays


def _digest(seed: int, slot: str) -> bytes:
    return hashlib.sha256(f"tribert-synth:{seed}:{slot}".encode()).digest()


def video_id(seed: int, slot: str) -> str:
    return base64.urlsafe_b64encode(_digest(seed, slot)).decode()[:11]


def _video_seed(seed: int, slot: str) -> int:
    return int.from_bytes(_digest(seed, slot)[16:24], "little") >> 1


def plan(params: SynthParams, seed: int) -> list[VideoSpec]:
    """All videos of the synthetic dataset: solos class by class, then duets."""
    rng = np.random.default_rng([seed, 0x5EED])
    # ``params.classes`` narrows the performed classes (tiny runs); idle instruments stay any class
    pool = [c for c in CLASSES if c in params.classes] if params.classes else list(CLASSES)
    slots: list[tuple[str, tuple[str, ...], str]] = []
    for c in pool:
        for k in range(params.videos_per_class):
            slots.append((f"solo/{c}/{k}", (c,), "solo"))
    n_same = params.duets if len(pool) < 2 else int(round(params.duets * params.same_class_duets))
    for k in range(params.duets):
        if k < n_same:
            c = pool[int(rng.integers(len(pool)))]
            pair = (c, c)
        else:
            a, b = rng.choice(len(pool), 2, replace=False)
            pair = (pool[int(a)], pool[int(b)])
        slots.append((f"duet/{k}", pair, "duet"))
    idle = np.zeros(len(slots), bool)
    idle[rng.permutation(len(slots))[: int(round(len(slots) * params.unplayed_instrument))]] = True
    specs = []
    for (slot, classes, kind), has_idle in zip(slots, idle):
        idle_class = CLASSES[int(rng.integers(len(CLASSES)))] if has_idle else None
        specs.append(VideoSpec(video_id(seed, slot), classes, kind, _video_seed(seed, slot),
                               idle_class))
    ids = [s.video_id for s in specs]
    assert len(set(ids)) == len(ids), "video ID collision"
    return specs


def id_lists(specs: list[VideoSpec]) -> dict[str, dict]:
    """The ID lists in the MUSIC_dataset JSON format, by file name."""
    solo: dict[str, list[str]] = {}
    duet: dict[str, list[str]] = {}
    for s in specs:
        if s.kind == "solo":
            solo.setdefault(s.classes[0], []).append(s.video_id)
        else:
            duet.setdefault(" ".join(s.classes), []).append(s.video_id)
    return {SOLO_LIST: {"version": LIST_VERSION, "videos": solo},
            DUET_LIST: {"version": LIST_VERSION, "videos": duet}}
