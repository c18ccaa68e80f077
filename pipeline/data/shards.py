"""HDF5 clip shards: the schema, a deterministic writer and small readers.

Schema version 1 (``data/clips/shard-NNNN.h5``). All datasets sit at the root; row ``i`` of every
dataset is clip ``i``; ``N`` = clips in the shard (at most ``decode.max_clips_per_shard``),
``F`` = frames per clip, ``S`` = frame side, ``L`` = 65535 samples. Chunks hold one clip each.

=============  ======================  =========  ============================================
dataset        shape                   dtype      meaning
=============  ======================  =========  ============================================
frames         (N, F, S, S, 3)         uint8      RGB frames at ``fps``, centred on the window
waveform       (N, L)                  float32    mono audio in [-1, 1] at ``sample_rate``
mag            (N, 256, 256)           float32    warped linear STFT magnitude (log-frequency
                                                  rows x time frames; SoP warp, not log-scaled)
label          (N, 21)                 uint8      multi-hot over ``classes`` (official order)
video_id       (N,)                    S<w>       video ID, UTF-8 (w: the longest ID's bytes,
                                                  at least 11; older shards: S11)
split          (N,)                    S5         train | val | test
kind           (N,)                    S4         solo | duet
window         (N,)                    int32      window number k within its video
start          (N,)                    float64    window start, seconds from the stream start
end            (N,)                    float64    window end (start + L / sample_rate)
start_sample   (N,)                    int64      window start in samples
frame_index    (N, F)                  int32      indices of the frames at ``fps`` (pose stages
                                                  align to these; frame i shows time i / fps)
frame_time     (N, F)                  float64    frame_index / fps, seconds
=============  ======================  =========  ============================================

File attributes: ``schema_version`` (1), ``n_clips``, ``shard_index``, ``sample_rate`` (11025),
``clip_samples`` (65535), ``n_fft`` (1022), ``hop`` (256), ``window`` ("hann"), ``center``
(True), ``warp`` ("sop-log21"), ``warp_size`` (256), ``align_corners`` (True), ``fps`` (8),
``frame_size`` (224), ``resize``, ``frames_per_clip``, ``frame_stride``, ``window_stride``,
``classes`` (the 21 names), ``params_hash`` (of the ``decode`` section).
Compression: ``frames`` only (lzf by default; see :data:`COMPRESSED`); chunks of one clip.
Checksums: every dataset carries HDF5's fletcher32 filter (computed after compression), so a
damaged chunk fails to read with an error instead of decompressing to wrong bytes (``tribert
inspect`` reads every row). Shards written before the checksums still read.

Contents are reproducible: the same clips and params give the same datasets and attributes.
Bytes too with ``compression: none`` or ``gzip`` (datasets are created with
``track_times=False`` in a fixed order, and no attribute holds a date); with ``lzf`` (the
default) the frames' chunks can, rarely, compress to other bytes that decompress to the same
frames, because h5py's liblzf starts its compressor from an uninitialised hash table (its
``INIT_HTAB`` is off). Seen in two full test-suite runs here: a killed and resumed
``decode`` gave a shard whose values all matched the uninterrupted run's, with 8 of 2.5 M bytes
inside one frames chunk different. Compare shards by contents (``tribert inspect``, or h5py),
not by checksum of the file. Each shard is written under a temporary name and renamed when
complete (:mod:`pipeline.atomic`).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from pipeline import atomic
from pipeline.classes import CLASSES, NUM_CLASSES
from pipeline.data import spectrogram as sp

SCHEMA_VERSION = 1
# Compression (``decode.compression``) applies to the frames only. Measured with
# ``tribert bench data --compression`` on the real MUSIC21 sample clips (kB per clip; random
# reads in clips/s, 1 process): frames none 452 / lzf 300 / gzip-1 246 / gzip-4 239; waveform and
# magnitude (float32, 262 kB each raw) shrink by 8% at best (lzf: 0%), so they stay raw; reads of
# a whole clip: raw ~3500/s, lzf ~800/s, gzip ~300/s. lzf is the default: within 7% of gzip's
# total size per clip (824 vs 770 kB; 976 raw) at two to three times gzip's read speed.
COMPRESSED = ("frames",)
SHARD_GLOB = "shard-*.h5"
ID_LEN, SPLIT_LEN, KIND_LEN = 11, 5, 4   # ID_LEN: the narrowest video_id width (YouTube's)


def encode_ids(ids, where: str = "") -> np.ndarray:
    """Video IDs as a fixed-width bytes array wide enough for the longest (UTF-8, at least
    ``ID_LEN`` bytes), so every ID round-trips exactly. An ID that cannot (empty, or holding a
    NUL, which fixed-width HDF5 strings drop) raises ValueError naming it."""
    raw = []
    for vid in ids:
        b = vid.encode("utf-8") if isinstance(vid, str) else bytes(vid)
        if not b or b"\0" in b:
            raise ValueError(f"{where}video ID {vid!r} cannot be stored (empty or holds a NUL)")
        raw.append(b)
    width = max([ID_LEN, *map(len, raw)])
    return np.array(raw, dtype=f"S{width}").reshape(len(raw))


def decode_ids(a) -> np.ndarray:
    """Stored video IDs (fixed-width bytes or variable-length) as a str array."""
    a = np.asarray(a)
    if a.dtype.kind == "U":
        return a
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in a.ravel()],
                    dtype=str).reshape(a.shape)


def shard_name(index: int) -> str:
    return f"shard-{index:04d}.h5"


def list_shards(directory: str | Path) -> list[Path]:
    """Shard files of a directory in index order."""
    return sorted(Path(directory).glob(SHARD_GLOB))


def schema(n: int, frames_per_clip: int, size: int, id_len: int = ID_LEN
           ) -> dict[str, tuple[tuple, np.dtype]]:
    """Dataset name -> (shape, dtype) for a shard of ``n`` clips, in the order they are written;
    ``id_len``: the video_id width in bytes (:func:`encode_ids`)."""
    return {
        "frames": ((n, frames_per_clip, size, size, 3), np.dtype(np.uint8)),
        "waveform": ((n, sp.CLIP_SAMPLES), np.dtype(np.float32)),
        "mag": ((n, sp.WARP_SIZE, sp.N_FRAMES), np.dtype(np.float32)),
        "label": ((n, NUM_CLASSES), np.dtype(np.uint8)),
        "video_id": ((n,), np.dtype(f"S{id_len}")),
        "split": ((n,), np.dtype(f"S{SPLIT_LEN}")),
        "kind": ((n,), np.dtype(f"S{KIND_LEN}")),
        "window": ((n,), np.dtype(np.int32)),
        "start": ((n,), np.dtype(np.float64)),
        "end": ((n,), np.dtype(np.float64)),
        "start_sample": ((n,), np.dtype(np.int64)),
        "frame_index": ((n, frames_per_clip), np.dtype(np.int32)),
        "frame_time": ((n, frames_per_clip), np.dtype(np.float64)),
    }


def file_attrs(p, params_hash: str) -> dict:
    """The file attributes for decode params ``p`` (a :class:`pipeline.data.decode.DecodeParams`)."""
    return {
        "schema_version": SCHEMA_VERSION, "sample_rate": sp.SAMPLE_RATE,
        "clip_samples": sp.CLIP_SAMPLES, "n_fft": sp.N_FFT, "hop": sp.HOP, "window": "hann",
        "center": True, "warp": "sop-log21", "warp_size": sp.WARP_SIZE,
        "align_corners": sp.ALIGN_CORNERS, "fps": p.fps, "frame_size": p.size,
        "resize": p.resize, "frames_per_clip": p.frames_per_clip, "frame_stride": p.frame_stride,
        "window_stride": p.window_stride, "classes": list(CLASSES), "params_hash": params_hash,
    }


def _compression(name: str, level: int) -> dict:
    if name == "none":
        return {}
    if name == "lzf":
        return {"compression": "lzf"}
    return {"compression": "gzip", "compression_opts": level}


class ShardWriter:
    """Write one shard of exactly ``n`` clips, row by row, atomically.

    Use as a context manager; :meth:`write` stores clip ``row`` from a mapping of dataset name ->
    value. Leaving the block with every row written renames the file into place; an exception
    (or missing rows) removes it. ``id_len``: the video_id width (an ID longer than it is
    refused, never cut).
    """

    def __init__(self, path: str | Path, n: int, attrs: dict, compression: str = "lzf",
                 gzip_level: int = 4, id_len: int = ID_LEN):
        assert n > 0, n
        self.path, self.n, self.attrs, self.id_len = Path(path), n, dict(attrs), id_len
        self.filters = _compression(compression, gzip_level)
        self.written = np.zeros(n, dtype=bool)

    def __enter__(self):
        self._ctx = atomic.atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self.file = h5py.File(tmp, "w", track_order=False)
        for key, value in {**self.attrs, "n_clips": self.n}.items():
            self.file.attrs[key] = value
        shapes = schema(self.n, self.attrs["frames_per_clip"], self.attrs["frame_size"],
                        self.id_len)
        self.ds = {}
        for name, (shape, dtype) in shapes.items():
            chunk = (1,) + shape[1:] if len(shape) > 1 else shape  # 1-D: one chunk
            filters = self.filters if name in COMPRESSED else {}
            self.ds[name] = self.file.create_dataset(
                name, shape=shape, dtype=dtype, chunks=chunk, fletcher32=True,
                track_times=False, **filters)
        return self

    def write(self, row: int, clip: dict) -> None:
        missing = set(self.ds) - set(clip)
        assert not missing, f"clip lacks fields {sorted(missing)}"
        vid = clip["video_id"]
        vid = vid.encode("utf-8") if isinstance(vid, str) else bytes(vid)
        if len(vid) > self.id_len or not vid or b"\0" in vid:
            raise ValueError(f"{self.path}: video ID {vid!r} does not fit the shard's "
                             f"{self.id_len}-byte video_id (it would be cut)")
        for name, ds in self.ds.items():
            ds[row] = vid if name == "video_id" else clip[name]
        self.written[row] = True

    def __exit__(self, exc_type, exc, tb):
        self.file.close()
        if exc_type is None and not self.written.all():
            err = RuntimeError(f"{self.path}: {int((~self.written).sum())} of {self.n} rows "
                               "never written")
            self._ctx.__exit__(RuntimeError, err, None)  # removes the temporary file
            raise err
        return self._ctx.__exit__(exc_type, exc, tb)


def read_index(path: str | Path, fields=("video_id", "split", "kind", "label")) -> dict:
    """Small per-clip fields of a shard (decoded to str where they are bytes)."""
    with h5py.File(path, "r") as f:
        out = {}
        for k in fields:
            a = f[k][()]
            if k == "video_id":
                out[k] = decode_ids(a)
            else:
                out[k] = a.astype(str) if a.dtype.kind == "S" else a
        return out
