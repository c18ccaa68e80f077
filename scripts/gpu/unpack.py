"""Rebuild data/clips (the train+val rows, written by the pipeline's own ShardWriter: one clip
per chunk, lzf frames, checksums; mag recomputed from the waveform by warped_magnitude),
data/keypoints and models/stgcn.pt from the folder scripts/gpu/pack.py made.
Usage (repository root, after unpacking the tar): python scripts/gpu/unpack.py FOLDER"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from pipeline.data import shards
from pipeline.data.spectrogram import warped_magnitude

src = Path(sys.argv[1])
meta = json.loads((src / "meta.json").read_text())
Path("data/clips").mkdir(parents=True, exist_ok=True)
Path("models").mkdir(exist_ok=True)
shutil.copytree(src / "keypoints", "data/keypoints", dirs_exist_ok=True)
shutil.copy(src / "stgcn.pt", "models/stgcn.pt")
for name, m in meta.items():
    d = src / Path(name).stem
    arrays = {field: np.load(d / f"clips.{field}.npy") for field in m["clips"]}
    dlt = np.ascontiguousarray(arrays["waveform"].transpose(1, 2, 0)).view(np.int16)[..., 0]
    arrays["waveform"] = np.cumsum(dlt, axis=1, dtype=np.int16).astype(np.float32) / 32768
    arrays["mag"] = torch.cat([warped_magnitude(torch.from_numpy(arrays["waveform"][i:i + 16]))
                               for i in range(0, len(dlt), 16)]).numpy()
    attrs = {k: (np.array(v, dtype=object) if isinstance(v, list) and v and isinstance(v[0], str)
                 else v) for k, v in m["clips_attrs"].items() if k != "n_clips"}
    n = len(dlt)
    id_len = arrays["video_id"].dtype.itemsize
    with shards.ShardWriter(Path("data/clips", name), n, attrs, "lzf", id_len=id_len) as w:
        for r in range(n):
            w.write(r, {k: v[r] for k, v in arrays.items()})
print("unpacked", len(meta), "shards")
