"""The MUSIC / MUSIC21 video ID lists (the format of roudimit/MUSIC_dataset).

A list file is JSON: ``{"version": 2.0, "videos": {"<class>": ["<id>", ...], ...}}``; in the duet
file a key names two classes, ``"classA classB"``. The paper (Sec. 4, "Datasets") trains on
MUSIC21 (21 classes, solos and duets) and fine-tunes on MUSIC (the 11-class subset); REFERENCE.md
gives the counts of the canonical files (MUSIC21 solo 1164 IDs, MUSIC solo 536, duets 149).

Every ID is validated as an 11-character YouTube ID and every class name is mapped to its
official spelling (``"acoustic guitar"`` -> ``acoustic_guitar``). Problems raise
:class:`ListError` naming the file (or URL) and the line; line numbers are recovered from the
JSON text because ``json`` does not keep them.

Duplicates: an ID may appear only once across the lists that are loaded together. An ID under
two keys (two solo classes, or a solo class and a duet) has an ambiguous label, and an ID
repeated under one key would be downloaded and split twice; both raise :class:`ListError`
naming both lines, so the list is fixed rather than silently reinterpreted. The canonical
files have no duplicates.
"""
from __future__ import annotations

import bisect
import json
import re
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline import atomic
from pipeline.classes import normalise_class

ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
SOLO_FILES = {"music21": "MUSIC21_solo_videos.json", "music": "MUSIC_solo_videos.json"}
DUET_FILE = "MUSIC_duet_videos.json"
_STRING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"')


class ListError(ValueError):
    """A problem in an ID list; the message starts with ``<file>:<line>:`` when a line is known."""


@dataclass(frozen=True)
class ListEntry:
    """One video of an ID list."""

    video_id: str
    classes: tuple[str, ...]   # official spellings; two for a duet, in the order of its key
    kind: str                  # "solo" | "duet"
    list_file: str             # the path or URL the entry was read from
    line: int                  # 1-based line of the ID in that file

    @property
    def key(self) -> str:
        """The MUSIC_dataset key of this entry ("violin", "flute violin")."""
        return " ".join(self.classes)


# --------------------------------------------------------------------------------------------
# locating JSON values in the text


class _Locator:
    """Maps the string values of a JSON text, in document order, to line numbers."""

    def __init__(self, text: str):
        self.tokens = [(m.start(), json.loads(m.group())) for m in _STRING_TOKEN.finditer(text)]
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.cursor = -1

    def line_at(self, offset: int) -> int:
        return bisect.bisect_left(self.newlines, offset) + 1

    def advance_to(self, value: str) -> int:
        """Line of the next string token equal to ``value`` after the cursor (cursor moves)."""
        for i in range(self.cursor + 1, len(self.tokens)):
            if self.tokens[i][1] == value:
                self.cursor = i
                return self.line_at(self.tokens[i][0])
        return self.current_line()

    def current_line(self) -> int:
        return self.line_at(self.tokens[self.cursor][0]) if self.cursor >= 0 else 1

    def nth_line(self, value: str, n: int) -> int:
        """Line of the n-th (1-based) occurrence of string ``value`` in the whole text."""
        hits = [off for off, v in self.tokens if v == value]
        return self.line_at(hits[min(n, len(hits)) - 1]) if hits else 1


class _DuplicateKey(Exception):
    def __init__(self, key):
        self.key = key


def _unique_keys(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise _DuplicateKey(k)
        seen[k] = v
    return seen


# --------------------------------------------------------------------------------------------
# parsing


def parse_classes(key: str, kind: str) -> tuple[str, ...]:
    """Class names of a list key: one class for a solo key, two for a duet key.

    A duet key is split into two class names at the one word boundary where both halves are
    known classes, so ``"acoustic guitar violin"`` works as well as ``"acoustic_guitar violin"``.
    """
    if kind == "solo":
        return (normalise_class(key),)
    words = key.split()
    found = []
    for i in range(1, len(words)):
        try:
            found.append((normalise_class(" ".join(words[:i])), normalise_class(" ".join(words[i:]))))
        except ValueError:
            continue
    if len(found) != 1:
        raise ValueError(f"duet key {key!r} must name exactly two known instrument classes")
    return found[0]


def parse_list(text: str, where: str, kind: str) -> list[ListEntry]:
    """Entries of one list file's text; ``where`` (path or URL) names it in errors."""
    if kind not in ("solo", "duet"):
        raise ValueError(f"kind must be solo or duet, got {kind!r}")
    loc = _Locator(text)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ListError(f"{where}:{e.lineno}: not valid JSON: {e.msg} (column {e.colno})") from None
    except _DuplicateKey as e:
        raise ListError(f"{where}:{loc.nth_line(e.key, 2)}: key {e.key!r} appears twice") from None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise ListError(f'{where}:1: expected an object {{"videos": {{"<class>": [ids]}}}}')
    loc.advance_to("videos")
    entries = []
    for key, ids in videos.items():
        key_line = loc.advance_to(key)
        try:
            classes = parse_classes(key, kind)
        except ValueError as e:
            raise ListError(f"{where}:{key_line}: {e}") from None
        if not isinstance(ids, list):
            raise ListError(f"{where}:{key_line}: {key!r}: expected a list of IDs, "
                            f"got {type(ids).__name__}")
        for vid in ids:
            if not isinstance(vid, str):
                raise ListError(f"{where}:{loc.current_line()}: {key!r}: expected an ID string, "
                                f"got {json.dumps(vid)}")
            line = loc.advance_to(vid)
            if not ID_RE.fullmatch(vid):
                raise ListError(f"{where}:{line}: malformed video ID {vid!r} (expected 11 "
                                f"characters of [A-Za-z0-9_-])")
            entries.append(ListEntry(vid, classes, kind, where, line))
    check_unique(entries)
    return entries


def check_unique(entries) -> None:
    """Raise :class:`ListError` if a video ID occurs twice (see the module docstring)."""
    first: dict[str, ListEntry] = {}
    for e in entries:
        if e.video_id in first:
            f = first[e.video_id]
            raise ListError(f"{e.list_file}:{e.line}: video ID {e.video_id!r} ({e.key}) is also "
                            f"listed at {f.list_file}:{f.line} ({f.key})")
        first[e.video_id] = e


# --------------------------------------------------------------------------------------------
# reading from a directory or a URL base


def _is_url(location: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*://", location, re.I) is not None


def read_text(location: str, name: str, timeout: float = 60.0) -> tuple[str, str]:
    """``(where, text)`` of list ``name`` in directory or URL base ``location``."""
    if _is_url(location):
        where = f"{location.rstrip('/')}/{name}"
        try:
            with urllib.request.urlopen(where, timeout=timeout) as resp:
                raw = resp.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ListError(f"{where}: cannot download list: {getattr(e, 'reason', e)}") from None
    else:
        path = Path(location) / name
        where = str(path)
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ListError(f"{where}: cannot read list: {e.strerror or e}") from None
    try:
        return where, raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ListError(f"{where}:{line}: not UTF-8 text") from None


def read_list(location: str, name: str, kind: str, timeout: float = 60.0) -> list[ListEntry]:
    """Entries of list file ``name`` (e.g. ``MUSIC21_solo_videos.json``) under ``location``."""
    where, text = read_text(location, name, timeout)
    return parse_list(text, where, kind)


def limit_per_key(entries, limit: int) -> list[ListEntry]:
    """The first ``limit`` entries of each key (class or duet pair), in list order; 0 = all."""
    if limit <= 0:
        return list(entries)
    seen = Counter()
    out = []
    for e in entries:
        seen[(e.kind, e.key)] += 1
        if seen[(e.kind, e.key)] <= limit:
            out.append(e)
    return out


def load_lists(source: str, location: str, *, duets: bool = True, limit_per_class: int = 0,
               timeout: float = 60.0) -> list[ListEntry]:
    """The videos of ``source`` ("music21" or "music"): its solo list under ``location`` (a
    directory or URL base, ``data.download.lists``), plus the duet list when ``duets``; the
    first ``limit_per_class`` IDs of each class or duet pair (0 = all)."""
    if source not in SOLO_FILES:
        raise ValueError(f"data.source: {source!r} has no ID list (known: {', '.join(SOLO_FILES)})")
    entries = read_list(location, SOLO_FILES[source], "solo", timeout)
    if duets:
        entries += read_list(location, DUET_FILE, "duet", timeout)
    check_unique(entries)
    return limit_per_key(entries, limit_per_class)


# --------------------------------------------------------------------------------------------
# writing


def to_json(entries, version: float | None = None) -> dict:
    """The MUSIC_dataset JSON object of ``entries`` (keys in order of first appearance)."""
    videos: dict[str, list[str]] = {}
    for e in entries:
        videos.setdefault(e.key, []).append(e.video_id)
    return ({} if version is None else {"version": version}) | {"videos": videos}


def write_list(path: str | Path, entries, version: float | None = None) -> None:
    """Write ``entries`` as one MUSIC_dataset list file, atomically."""
    entries = list(entries)
    check_unique(entries)
    atomic.write_text(path, json.dumps(to_json(entries, version), indent=4) + "\n")


def as_list_files(entries, source: str) -> dict[str, dict]:
    """``{file name: JSON object}`` of the entries, named like the canonical lists of
    ``source`` (the acquire stage keeps a copy of exactly the lists it used in data/raw/lists)."""
    solos = [e for e in entries if e.kind == "solo"]
    duets = [e for e in entries if e.kind == "duet"]
    out = {SOLO_FILES[source]: to_json(solos)} if solos else {}
    return out | ({DUET_FILE: to_json(duets)} if duets else {})
