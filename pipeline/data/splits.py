"""Train/val/test split by video ID, decided once by the acquire stage.

The paper has no official split: it uses a random 80/20 split by video ID (REFERENCE.md "Data";
paper Sec. 4.1). Here the split has three parts, because model selection must use val only and
the test split is kept for the final tables.

``mode: random`` (default): each video ID is one unit, so a duet is always assigned whole and no
ID can land in two splits. Units are stratified: solos by class, duets by their class pair, so
every class keeps about the same share in each split. Within a stratum the order is a seeded
hash of the ID (sha256 of "<seed>:<id>"), independent of input order; each stratum gives its
first ``round(n * test)`` units to test and the next ``round(n * val)`` to val, where the
rounding remainders are carried from stratum to stratum so the totals match the fractions to
within one video.

``mode: official``: the lists of the official code, one ID per line. ``official_train``
(tribert_music21_train.csv) is the training pool and ``official_test``
(tribert_music21_val.csv: the official code calls it "val" but it is the paper's test set, and
the official code also picked its checkpoint on it) is our test split, as is. ``params.test`` is
not used; val is carved out of the training pool with the seeded, stratified rule, ``params.val``
of all videos. IDs in neither official list (the canonical lists have 262: 228 MUSIC21 solos and
34 duets that the paper's authors could no longer download) go to the training pool, never to
test, so the test set stays exactly the paper's. Official IDs absent from ``entries`` are ignored.
"""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from pathlib import Path

from pipeline.data.lists import ID_RE, ListError


def _order_key(seed: int, video_id: str) -> str:
    return hashlib.sha256(f"{seed}:{video_id}".encode()).hexdigest()


def _stratum(entry) -> tuple[str, str]:
    return entry.kind, " ".join(entry.classes)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _unique(entries) -> list:
    entries = list(entries)
    seen = set()
    for e in entries:
        if e.video_id in seen:
            raise ValueError(f"split: video ID {e.video_id!r} occurs twice; IDs must be unique")
        seen.add(e.video_id)
    return entries


def stratified(entries, fractions: dict[str, float], rest: str, seed: int) -> dict[str, str]:
    """Assign each entry's ID to a split: ``fractions`` (e.g. {"test": .2, "val": .1}, filled
    in that order) of every stratum, ``rest`` for the remainder."""
    strata = defaultdict(list)
    for e in entries:
        strata[_stratum(e)].append(e.video_id)
    carry = dict.fromkeys(fractions, 0.0)
    out = {}
    for key in sorted(strata):
        ids = sorted(strata[key], key=lambda i: _order_key(seed, i))
        start = 0
        for split, frac in fractions.items():
            exact = len(ids) * frac + carry[split]
            k = min(max(_round_half_up(exact), 0), len(ids) - start)
            carry[split] = exact - k
            out.update(dict.fromkeys(ids[start:start + k], split))
            start += k
        out.update(dict.fromkeys(ids[start:], rest))
    return out


def read_official(path: str | Path) -> list[str]:
    """The IDs of an official split list (one ID per line, no header; blank lines skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ListError(f"{path}: cannot read split list: {getattr(e, 'strerror', None) or e}") from None
    ids, lines = [], {}
    for n, raw in enumerate(text.splitlines(), start=1):
        vid = raw.strip()
        if not vid:
            continue
        if not ID_RE.fullmatch(vid):
            raise ListError(f"{path}:{n}: malformed video ID {vid!r} (expected 11 characters "
                            f"of [A-Za-z0-9_-], one per line)")
        if vid in lines:
            raise ListError(f"{path}:{n}: video ID {vid!r} repeats line {lines[vid]}")
        lines[vid] = n
        ids.append(vid)
    return ids


def _official(entries, params) -> dict[str, str]:
    train = set(read_official(params.official_train))
    test = read_official(params.official_test)
    both = sorted(train.intersection(test))
    if both:
        raise ListError(f"{params.official_test}: video ID {both[0]!r} is also in "
                        f"{params.official_train} ({len(both)} IDs in both)")
    test = set(test)
    out = {e.video_id: "test" for e in entries if e.video_id in test}
    pool = [e for e in entries if e.video_id not in test]
    if pool:
        val = min(1.0, params.val * len(entries) / len(pool))
        out.update(stratified(pool, {"val": val}, "train", params.seed))
    return out


def assign_splits(entries, params) -> dict[str, str]:
    """``{video_id: "train" | "val" | "test"}`` for every entry (anything with ``video_id``,
    ``classes`` and ``kind``: list entries or manifest rows); ``params`` is a
    :class:`pipeline.params.SplitParams`. Deterministic for a given seed and set of IDs."""
    entries = _unique(entries)
    for e in entries:
        if not ID_RE.fullmatch(e.video_id):
            raise ValueError(f"split: malformed video ID {e.video_id!r}")
    if params.mode == "official":
        out = _official(entries, params)
    else:
        out = stratified(entries, {"test": params.test, "val": params.val}, "train", params.seed)
    assert len(out) == len(entries), "every ID gets exactly one split"
    return out
