"""Atomic outputs and the manifest format."""
from __future__ import annotations

import pytest

from pipeline import atomic
from pipeline.data import manifest


def test_atomic_path_renames_on_success_and_cleans_on_error(tmp_path):
    final = tmp_path / "out" / "a.bin"
    with atomic.atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp.suffix == ".bin"
        tmp.write_bytes(b"x")
        assert not final.exists()
    assert final.read_bytes() == b"x"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert final.read_bytes() == b"x"
    assert list(final.parent.iterdir()) == [final]


def test_clean_temporaries_removes_leftovers(tmp_path):
    (tmp_path / f"{atomic.TMP_MARK}video-123.mp4").write_bytes(b"partial")
    (tmp_path / "keep.mp4").write_bytes(b"whole")
    assert atomic.clean_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]


def test_manifest_round_trip_is_sorted_and_stable(tmp_path):
    rows = [
        manifest.Row("bbbbbbbbbbb", ("violin", "cello"), "duet", "youtube", "test", "unavailable",
                     "Video unavailable"),
        manifest.Row("aaaaaaaaaaa", ("acoustic_guitar",), "solo", "synthetic", "train", "ok", "",
                     "videos/aaaaaaaaaaa.mp4", "annotations/aaaaaaaaaaa.json", 12.0),
    ]
    path = tmp_path / "manifest.csv"
    manifest.write(path, rows)
    first = path.read_bytes()
    back = manifest.read(path)
    assert [r.video_id for r in back] == ["aaaaaaaaaaa", "bbbbbbbbbbb"]
    assert back[1].classes == ("violin", "cello") and back[1].reason == "Video unavailable"
    manifest.write(path, back)
    assert path.read_bytes() == first


def test_manifest_rejects_bad_rows_with_line(tmp_path):
    path = tmp_path / "manifest.csv"
    manifest.write(path, [manifest.Row("aaaaaaaaaaa", ("violin",))])
    path.write_text(path.read_text().replace(",ok,", ",maybe,"))
    with pytest.raises(ValueError, match=r"manifest.csv:2: .*status 'maybe'"):
        manifest.read(path)


def test_atomic_outputs_get_the_usual_modes_not_mkstemps_private_ones(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    atomic.write_text(tmp_path / "f.txt", "x")
    with atomic.atomic_dir(tmp_path / "d") as d:
        (d / "inner.txt").write_text("y")
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "d" / "inner.txt").read_text() == "y"
