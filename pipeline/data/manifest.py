"""The per-video manifest: one row per video ID, written by ``acquire`` and read by every later
stage. Later stages write their own status tables in their own outputs; none rewrites this one.

Columns: video_id, classes (space-separated class names, official spelling), kind (solo|duet),
source (synthetic|youtube|local), split (train|val|test), status (ok|unavailable|failed),
reason (empty when ok), video (path relative to the manifest's directory, empty when missing),
annotations (AlphaPose-format keypoint JSON relative path, synthetic data only), duration (s).
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from pipeline import atomic
from pipeline.classes import normalise_class

STATUSES = ("ok", "unavailable", "failed")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Row:
    video_id: str
    classes: tuple[str, ...]
    kind: str = "solo"
    source: str = "synthetic"
    split: str = ""
    status: str = "ok"
    reason: str = ""
    video: str = ""
    annotations: str = ""
    duration: float = 0.0

    def __post_init__(self):
        vid = self.video_id
        if not vid or vid != vid.strip() or any(c in vid for c in "\0/\\") \
                or not vid.isprintable():
            # the ID names files (videos/<id>.mp4) and shard rows: it must round-trip exactly
            raise ValueError(f"video ID {vid!r} is empty, has surrounding spaces, a path "
                             "separator or an unprintable character")
        if self.status not in STATUSES:
            raise ValueError(f"{self.video_id}: status {self.status!r} not in {STATUSES}")
        if self.split and self.split not in SPLITS:
            raise ValueError(f"{self.video_id}: split {self.split!r} not in {SPLITS}")
        if self.kind not in ("solo", "duet"):
            raise ValueError(f"{self.video_id}: kind {self.kind!r} must be solo or duet")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def with_(self, **kw) -> "Row":
        return replace(self, **kw)


COLUMNS = [f.name for f in fields(Row)]


def write(path: str | Path, rows) -> None:
    """Write the manifest atomically, sorted by video ID (so it is byte-stable)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: r.video_id):
        d = asdict(r)
        d["classes"] = " ".join(r.classes)
        d["duration"] = f"{r.duration:.3f}"
        w.writerow(d)
    atomic.write_text(path, buf.getvalue())


def read(path: str | Path) -> list[Row]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read manifest: {e.strerror}") from None
    rows = []
    reader = csv.DictReader(io.StringIO(text))
    missing = set(COLUMNS) - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{path}: manifest lacks columns {sorted(missing)}")
    for line, d in enumerate(reader, start=2):
        try:
            rows.append(Row(
                video_id=d["video_id"], classes=tuple(normalise_class(c) for c in d["classes"].split()),
                kind=d["kind"], source=d["source"], split=d["split"], status=d["status"],
                reason=d["reason"], video=d["video"], annotations=d["annotations"],
                duration=float(d["duration"] or 0.0)))
        except ValueError as e:
            raise ValueError(f"{path}:{line}: {e}") from None
    return rows
