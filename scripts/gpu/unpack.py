"""Rebuild data/clips (train+val rows; mag recomputed from the waveform by the project's own
warped_magnitude) and data/keypoints, models/stgcn.pt from pack.py's output."""
import json, shutil, sys, h5py, numpy as np, torch
from pathlib import Path
from pipeline.data.spectrogram import warped_magnitude
src = Path(sys.argv[1]); meta = json.loads((src / "meta.json").read_text())
Path("data/clips").mkdir(parents=True, exist_ok=True)
Path("models").mkdir(exist_ok=True)
shutil.copytree(src / "keypoints", "data/keypoints", dirs_exist_ok=True)
shutil.copy(src / "stgcn.pt", "models/stgcn.pt")
for name, m in meta.items():
    d = src / Path(name).stem
    with h5py.File(Path("data/clips", name), "w") as f:
        for k, v in m["clips_attrs"].items():
            f.attrs[k] = np.array(v, dtype=object) if isinstance(v, list) and v and isinstance(v[0], str) else v
        for field in m["clips"]:
            a = np.load(d / f"clips.{field}.npy")
            if field == "waveform":
                dlt = np.ascontiguousarray(a.transpose(1, 2, 0)).view(np.int16)[..., 0]
                a = np.cumsum(dlt, axis=1, dtype=np.int16).astype(np.float32) / 32768
                mag = torch.cat([warped_magnitude(torch.from_numpy(a[i:i + 16]))
                                 for i in range(0, len(a), 16)]).numpy()
                f.create_dataset("mag", data=mag)
            f.create_dataset(field, data=a, compression="lzf" if field == "frames" else None)
        f.attrs["n_clips"] = len(a)
print("unpacked", len(meta), "shards")
