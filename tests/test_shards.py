"""HDF5 shards: schema, attributes, one clip per chunk, reproducible bytes, atomic writes."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from pipeline.data import decode, manifest, shards
from pipeline.classes import CLASSES
from pipeline.data.decode import DecodeParams
from pipeline.data.spectrogram import warped_magnitude
from support import assert_same_shards, split_violations
from test_decode import make_video, write_manifest

torch.set_num_threads(1)


def fake_clip(i: int, f: int = 3, size: int = 224) -> dict:
    rng = np.random.default_rng(i)
    label = np.zeros(21, np.uint8)
    label[i % 21] = 1
    return {"frames": rng.integers(0, 255, (f, size, size, 3), dtype=np.uint8),
            "waveform": (rng.standard_normal(65535) * 0.1).astype(np.float32),
            "mag": rng.random((256, 256), dtype=np.float32), "label": label,
            "video_id": f"video{i:06d}".encode(), "split": b"train", "kind": b"solo",
            "window": i, "start": 0.0, "end": 65535 / 11025, "start_sample": 0,
            "frame_index": np.array([23, 24, 25]), "frame_time": np.array([23, 24, 25]) / 8}


def write_fake(path, n=2, p=DecodeParams()):
    with shards.ShardWriter(path, n, {**shards.file_attrs(p, "abc"), "shard_index": 0},
                            p.compression) as w:
        for i in range(n):
            w.write(i, fake_clip(i))
    return path


def test_writer_follows_the_schema(tmp_path):
    path = write_fake(tmp_path / "shard-0000.h5")
    expected = shards.schema(2, 3, 224)
    with h5py.File(path, "r") as f:
        assert list(f.keys()) == sorted(expected)
        for name, (shape, dtype) in expected.items():
            assert f[name].shape == shape and f[name].dtype == dtype, name
        assert f["frames"].chunks == (1, 3, 224, 224, 3)   # one clip per chunk
        assert f["waveform"].chunks == (1, 65535)
        assert f.attrs["schema_version"] == 1 and f.attrs["n_clips"] == 2
        assert list(f.attrs["classes"]) == list(CLASSES)
        assert f.attrs["params_hash"] == "abc" and f.attrs["align_corners"]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_same_clips_give_the_same_bytes(tmp_path, compression):
    p = DecodeParams(compression=compression)
    a = write_fake(tmp_path / "a.h5", p=p).read_bytes()
    b = write_fake(tmp_path / "b.h5", p=p).read_bytes()
    assert a == b


def test_same_clips_give_the_same_contents_with_lzf(tmp_path):
    """lzf (the default) is compared by contents: liblzf's compressor starts from an
    uninitialised hash table, so the same chunk can compress to other (equally valid) bytes."""
    assert DecodeParams().compression == "lzf"
    for d in "ab":
        (tmp_path / d).mkdir()
        write_fake(tmp_path / d / "shard-0000.h5", n=3)
    assert_same_shards(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_compression_is_lossless(tmp_path, compression):
    path = write_fake(tmp_path / "s.h5", p=DecodeParams(compression=compression))
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["frames"][1], fake_clip(1)["frames"])
        assert f["frames"].compression == (None if compression == "none" else "gzip")


def test_incomplete_shard_is_not_left_behind(tmp_path):
    p = DecodeParams()
    with pytest.raises(RuntimeError, match="1 of 2 rows never written"):
        with shards.ShardWriter(tmp_path / "s.h5", 2, {**shards.file_attrs(p, "x"),
                                                       "shard_index": 0}) as w:
            w.write(0, fake_clip(0))
    assert list(tmp_path.iterdir()) == []


def test_failed_write_is_not_left_behind(tmp_path):
    p = DecodeParams()
    with pytest.raises(ZeroDivisionError):
        with shards.ShardWriter(tmp_path / "s.h5", 1, {**shards.file_attrs(p, "x"),
                                                       "shard_index": 0}):
            1 / 0
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    d = tmp_path_factory.mktemp("dec")
    vids = {"a": make_video(d / "a.mp4", seconds=10, freq=330),
            "b": make_video(d / "b.mp4", seconds=7, freq=880)}
    m = write_manifest(d, vids, ["a", "b"])
    decode.run(m, d / "clips", DecodeParams(max_clips_per_shard=8), progress=False)
    return shards.list_shards(d / "clips")


def test_cached_audio_is_in_range_and_not_silent(decoded):
    with h5py.File(decoded[0], "r") as f:
        wave = f["waveform"][()]
    assert np.isfinite(wave).all() and np.abs(wave).max() <= 1.0
    assert (np.sqrt((wave ** 2).mean(axis=1)) > 0.01).all()   # SoP issue #7: not silent


def test_cached_magnitude_is_the_warped_stft_of_the_waveform(decoded):
    with h5py.File(decoded[0], "r") as f:
        wave, mag = f["waveform"][:1], f["mag"][:1]
    assert np.allclose(mag, warped_magnitude(torch.from_numpy(wave)).numpy(), atol=1e-4)


def test_decoded_rows_carry_ids_labels_and_times(decoded):
    idx = shards.read_index(decoded[0], ("video_id", "label", "start", "frame_index", "window"))
    assert len(idx["video_id"]) == 3   # 10 s video: two windows at 3 s stride; 7 s: one
    assert list(idx["video_id"]) == sorted(idx["video_id"])
    assert idx["label"].sum(axis=1).tolist() == [2, 2, 1]  # first video a duet, then a solo
    assert idx["start"].tolist()[:2] == [0.0, 3.0]
    assert idx["frame_index"][1].tolist() == [47, 48, 49]


def test_video_ids_of_any_length_round_trip_through_decode(tmp_path):
    """Item 4 of issue 12: IDs were stored as S11, so GOODCONTROL_LONGER became GOODCONTROL and
    merged with the video of that name (in another split)."""
    vids = {"a": make_video(tmp_path / "a.mp4", seconds=10, freq=330),   # two clips
            "b": make_video(tmp_path / "b.mp4", seconds=7, freq=880),
            "c": make_video(tmp_path / "c.mp4", seconds=7, freq=440)}
    ids = {"a": "GOODCONTROL", "b": "GOODCONTROL_LONGER", "c": "vidéo-ü"}
    split = {"a": "train", "b": "test", "c": "val"}
    rows = [manifest.Row(ids[k], ("violin",), split=split[k], video=f"{k}.mp4", duration=7.0)
            for k in vids]
    manifest.write(tmp_path / "manifest.csv", rows)
    decode.run(tmp_path / "manifest.csv", tmp_path / "clips", DecodeParams(), progress=False)
    (path,) = shards.list_shards(tmp_path / "clips")
    idx = shards.read_index(path, ("video_id", "split"))
    assert sorted(set(idx["video_id"])) == sorted(ids.values())
    by_id = {v: k for k, v in ids.items()}
    assert all(split[by_id[v]] == s for v, s in zip(idx["video_id"], idx["split"]))
    assert split_violations(tmp_path / "manifest.csv", tmp_path / "clips") == []
    with h5py.File(path, "r") as f:
        assert f["video_id"].dtype.itemsize == len("GOODCONTROL_LONGER")
        f_ids = f["video_id"][()]
    # the check can fail: one row of GOODCONTROL moved to another split
    with h5py.File(path, "r+") as f:
        row = int(np.flatnonzero(f_ids == b"GOODCONTROL")[0])
        f["split"][row] = b"test"
    assert split_violations(tmp_path / "manifest.csv", tmp_path / "clips") == [
        "GOODCONTROL is in splits ['test', 'train']"]
    from pipeline.tools.inspect import check_shard
    assert check_shard(path) == []


def test_an_id_that_cannot_round_trip_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        with _short_writer() as w:
            w.write(0, {**fake_clip(0), "video_id": b"twelve_bytes"})
    assert shards.decode_ids(shards.encode_ids(["x" * 40, "é"])).tolist() == ["x" * 40, "é"]
    with pytest.raises(ValueError, match="cannot be stored"):
        shards.encode_ids(["ok", "bad\0id"])


def _short_writer():
    import tempfile

    p = DecodeParams()
    d = tempfile.mkdtemp()
    return shards.ShardWriter(f"{d}/s.h5", 1, {**shards.file_attrs(p, "x"), "shard_index": 0})


@pytest.mark.parametrize("vid", ["", " padded", "a/b", "nul\0", "tab\there"])
def test_manifest_refuses_ids_that_cannot_round_trip_naming_the_row(tmp_path, vid):
    path = tmp_path / "manifest.csv"
    manifest.write(path, [manifest.Row("fine_id", ("violin",))])
    text = path.read_text().splitlines()
    path.write_text("\n".join([*text, text[1].replace("fine_id", vid, 1)]) + "\n")
    with pytest.raises(ValueError, match=f"{path}:3: video ID"):
        manifest.read(path)
