"""Pictures of the visual class-attention maps over frames (supplement 2.5, Fig. 2: "Attention
map (red higher attention) with class labels ... from our learned visual segmentation network").

For each pictured clip, every frame goes through the model's visual tokenizer (the same
normalisation as training, :func:`model.visual.prepare_frames`); the maps of the top-K classes,
the ones that pool the frame's visual tokens (paper Fig. 2), are upsampled bilinearly to the
frame and drawn over it as heatmaps. The maps A_m = S_E * S_D are signed; each is min-max
scaled to [0, 1] for display, so the colours show where a map is highest within that frame, not
how maps compare across frames.

Outputs: ``<clip>.png`` per clip (rows: frames; columns: the frame and its K class maps),
``grid.png`` (rows: clips; columns: frames with the top class map) and ``clips.json`` (which
clips, their labels and the classes of the maps).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from model.visual import prepare_frames  # noqa: E402
from pipeline.atomic import atomic_path, write_json  # noqa: E402
from pipeline.classes import CLASSES, MUSIC11  # noqa: E402
from pipeline.data.dataset import ClipDataset


def class_names(num_classes: int) -> tuple[str, ...]:
    """Names of a model's classes: the 21 of MUSIC21, the 11 of MUSIC (fine-tuned), or
    numbers."""
    if num_classes == len(CLASSES):
        return CLASSES
    if num_classes == len(MUSIC11):
        return MUSIC11
    return tuple(f"class {i}" for i in range(num_classes))


def pick_clips(n: int, count: int, seed: int) -> list[int]:
    """``count`` distinct clip indices out of ``n``, drawn from ``seed``, in ascending order."""
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=min(count, n), replace=False))


@torch.no_grad()
def frame_maps(model: torch.nn.Module, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (F, H, W, 3) -> maps (F, K, H, W) in [0, 1] (min-max per map, upsampled to
    the frame) and class indices (F, K), best class first. ``model`` must be in eval mode
    (dropout would change the maps)."""
    assert not model.training, "attention maps need model.eval()"
    assert frames.ndim == 4 and frames.shape[-1] == 3, frames.shape
    x = prepare_frames(torch.from_numpy(np.ascontiguousarray(frames)))      # (F, 3, H, W)
    maps, top = model.visual.attention_maps(x)                              # (F, K, h, w)
    maps = F.interpolate(maps.float(), size=frames.shape[1:3], mode="bilinear",
                         align_corners=False)
    lo = maps.amin(dim=(2, 3), keepdim=True)
    hi = maps.amax(dim=(2, 3), keepdim=True)
    maps = (maps - lo) / (hi - lo).clamp(min=1e-12)
    assert maps.shape[:2] == top.shape, (maps.shape, top.shape)
    return maps.numpy(), top.numpy()


def _overlay(ax, frame, heat, alpha: float, label: str) -> None:
    ax.imshow(frame)
    if heat is not None:
        ax.imshow(heat, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
    ax.set_xlabel(label, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path: Path, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def plot_clip(frames, maps, top, names, title: str, alpha: float):
    """Rows: frames; columns: the frame, then its K class maps labelled with the class."""
    T, K = top.shape
    fig, axes = plt.subplots(T, K + 1, figsize=(2.2 * (K + 1), 2.3 * T), squeeze=False)
    for t in range(T):
        _overlay(axes[t, 0], frames[t], None, alpha, f"frame {t}")
        for k in range(K):
            _overlay(axes[t, k + 1], frames[t], maps[t, k], alpha, names[top[t, k]])
    fig.suptitle(title, fontsize=9)
    return fig


def plot_grid(entries: list[dict], names, alpha: float):
    """Rows: clips; columns: their frames with the top class map, labelled with the class."""
    T = entries[0]["top"].shape[0]
    fig, axes = plt.subplots(len(entries), T, figsize=(2.2 * T, 2.4 * len(entries)),
                             squeeze=False)
    for r, e in enumerate(entries):
        for t in range(T):
            _overlay(axes[r, t], e["frames"][t], e["maps"][t, 0], alpha, names[e["top"][t, 0]])
        axes[r, 0].set_ylabel(f"{e['video_id']}\n({', '.join(e['labels'])})", fontsize=8)
    fig.suptitle("Visual attention maps (red: higher attention) with the attended class; "
                 "rows: video (true labels)", fontsize=9)
    fig.tight_layout()
    return fig


def run(model: torch.nn.Module, clips: str | Path, out: str | Path, params,
        split: str = "test") -> list[dict]:
    """Write the pictures of ``params.count`` clips of ``split`` into ``out``; returns the
    records of ``clips.json``."""
    out = Path(out)
    ds = ClipDataset(clips, split, fields=("frames", "label"))
    names = class_names(model.visual.attention.discriminative.out_channels)
    entries, records = [], []
    for i in pick_clips(len(ds), params.count, params.seed):
        item = ds.clip(i)
        frames = item["frames"].numpy()
        maps, top = frame_maps(model, frames)
        labels = [CLASSES[c] for c in np.flatnonzero(item["label"].numpy())]
        name = f"{split}-{i:05d}-{item['video_id']}.png"
        title = f"{item['video_id']} (clip {i} of {split}); label: {', '.join(labels)}"
        _save(plot_clip(frames, maps, top, names, title, params.alpha), out / name, params.dpi)
        entries.append({"frames": frames, "maps": maps, "top": top,
                        "video_id": item["video_id"], "labels": labels})
        records.append({"clip": i, "video_id": item["video_id"], "labels": labels,
                        "classes": [[names[c] for c in row] for row in top], "file": name})
    _save(plot_grid(entries, names, params.alpha), out / "grid.png", params.dpi)
    write_json(out / "clips.json", {"split": split, "clips": records})
    return records
