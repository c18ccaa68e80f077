"""PNG training curves that display offline (matplotlib, Agg backend), written atomically:
``loss.png`` (per step and per-epoch mean), ``val_separation.png`` (val SDR/SIR/SAR per epoch
against the mixture's SDR) and ``accuracy.png`` (classification accuracy per stream)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline import atomic  # noqa: E402


def _save(fig, path: Path) -> None:
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def _series(history: list[dict], key: str) -> tuple[list, list]:
    pts = [(h["epoch"], h[key]) for h in history if key in h]
    return [p[0] for p in pts], [p[1] for p in pts]


def loss_plot(path: Path, history: list[dict], step_losses: list[float]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    if step_losses:
        ax.plot(range(1, len(step_losses) + 1), step_losses, lw=0.6, alpha=0.5, label="step")
    steps = [h["step"] for h in history if "train/loss" in h]
    ax.plot(steps, [h["train/loss"] for h in history if "train/loss" in h], "o-",
            label="epoch mean")
    ax.set(xlabel="step", ylabel="training loss", title="Training loss")
    ax.legend()
    _save(fig, path)


def separation_plot(path: Path, history: list[dict]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, style in (("val/sdr", "o-"), ("val/sir", "s-"), ("val/sar", "^-"),
                       ("val/sdr_mix", "k--")):
        x, y = _series(history, key)
        if x:
            ax.plot(x, y, style, label=key.split("/")[1].upper().replace("_MIX", " of mixture"))
    ax.set(xlabel="epoch", ylabel="dB", title="Validation separation (mix of 2)")
    ax.legend()
    _save(fig, path)


def accuracy_plot(path: Path, history: list[dict]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = sorted({k for h in history for k in h if k.startswith("val/acc_")})
    for key in keys:
        x, y = _series(history, key)
        ax.plot(x, y, "o-", label=key.split("/")[1])
    ax.set(xlabel="epoch", ylabel="accuracy", title="Validation classification accuracy",
           ylim=(0, 1))
    if keys:
        ax.legend()
    _save(fig, path)


def write_all(directory: Path, history: list[dict], step_losses: list[float]) -> None:
    directory = Path(directory)
    loss_plot(directory / "loss.png", history, step_losses)
    separation_plot(directory / "val_separation.png", history)
    accuracy_plot(directory / "accuracy.png", history)
