"""`tribert inspect`: summary, integrity check (exit codes) and rendering."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from test_shards import write_fake


@pytest.fixture()
def shard(tmp_path):
    return write_fake(tmp_path / "shard-0000.h5", n=3)


def _run(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


def test_sound_shard_is_summarised(shard):
    r = _run(shard)
    assert r.exit_code == 0, r.output
    assert "3 clips from 3 videos" in r.output and "train 3" in r.output
    assert "bagpipe" in r.output and "frames" in r.output and "params_hash" in r.output


def test_truncated_shard_fails(shard):
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    r = _run(shard)
    assert r.exit_code != 0
    assert "unreadable" in r.output


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize("edit,message", [
    (lambda f: f["waveform"].__setitem__(1, np.full(65535, np.nan, np.float32)), "NaN"),
    (lambda f: f["waveform"].__setitem__(0, np.zeros(65535, np.float32)), "silent"),
    (lambda f: f.attrs.__setitem__("n_fft", 512), "n_fft"),
    (lambda f: f.attrs.__setitem__("n_clips", 4), "shape"),
    (lambda f: (f.__delitem__("label"), f.create_dataset("label", data=np.ones((2, 21), "u1"))),
     "label has shape"),
    (lambda f: f.__delitem__("mag"), "mag missing"),
])
def test_inconsistent_shard_fails(shard, edit, message):
    _edit(shard, edit)
    r = _run(shard)
    assert r.exit_code != 0
    assert message in r.output


def test_one_bad_shard_among_good_ones_fails(shard, tmp_path):
    other = write_fake(tmp_path / "shard-0001.h5")
    other.write_bytes(b"not hdf5")
    r = _run(shard, other)
    assert r.exit_code != 0 and "1 of 2" in r.output


def test_render_writes_a_png(shard, tmp_path):
    out = tmp_path / "clip.png"
    r = _run(shard, "--render", 1, "--out", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_draws_row_aligned_keypoints(shard, tmp_path):
    pose = tmp_path / "pose"
    pose.mkdir()
    kp = np.zeros((3, 3, 2, 68, 3), np.float32)
    kp[..., 0], kp[..., 1], kp[..., 2] = 100, 120, 1
    with h5py.File(pose / shard.name, "w") as f:
        f["keypoints"] = kp
    out = tmp_path / "clip.png"
    r = _run(shard, "--render", 0, "--out", out, "--pose", pose)
    assert r.exit_code == 0, r.output
    assert out.exists()


def test_render_index_out_of_range(shard, tmp_path):
    r = _run(shard, "--render", 9, "--out", tmp_path / "x.png")
    assert r.exit_code != 0 and "outside" in r.output


def _overwrite_inside_chunk(path, dataset, row, nbytes, fill=0x5A):
    """Overwrite ``nbytes`` in the middle of the stored (compressed) chunk of ``row``."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info_by_coord((row,) + (0,) * (f[dataset].ndim - 1))
    start = info.byte_offset + info.size // 4
    n = min(nbytes, info.size // 2)
    with open(path, "r+b") as fh:
        fh.seek(start)
        fh.write(bytes([fill]) * n)


@pytest.mark.parametrize("dataset", ["frames", "waveform", "mag", "label", "video_id"])
def test_damaged_bytes_inside_a_shard_are_detected(shard, dataset):
    """Issue 12 item 5: bytes overwritten inside lzf-compressed frames decompressed to wrong
    pixels without an error and passed; every dataset now carries a fletcher32 checksum."""
    _overwrite_inside_chunk(shard, dataset, 1, 200_000)
    r = _run(shard)
    assert r.exit_code != 0, r.output
    assert f"{dataset}[" in r.output and "DAMAGED" in r.output


def test_shards_carry_checksums_and_older_ones_are_flagged(shard, tmp_path):
    from pipeline.tools.inspect import unchecked

    assert unchecked(shard) == []
    old = tmp_path / "old.h5"
    with h5py.File(shard, "r") as f, h5py.File(old, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        for k, ds in f.items():
            g.create_dataset(k, data=ds[()])
    r = _run(old)
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if "no checksums on" in x)
    assert "frames" in line and "waveform" in line


@pytest.mark.parametrize("hands, says", [(True, "body and hands (68)"),
                                         (False, "body only (26; stgcn.hands: false)")])
def test_stgcn_checkpoint_card_says_which_joints_it_was_trained_on(tmp_path, hands, says):
    from pipeline.pose.stgcn import STGCN, save_checkpoint

    model = STGCN(width=0.0625)
    model.hands = hands
    save_checkpoint(model, tmp_path / "stgcn.pt", {})
    r = _run(tmp_path / "stgcn.pt")
    assert r.exit_code == 0, r.output
    assert "STGCN model package" in r.output and f"joints       {says}" in r.output
