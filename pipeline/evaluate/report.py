"""Example outputs of the evaluation, laid out as Sound-of-Pixels writes its visualisation, and
the qualitative figure of paper Fig. 3.

``examples/<set>-<index>-<video 1>+<video 2>/`` per kept mixture:

- ``mix.wav``, ``gt1.wav``, ``gt2.wav`` (the 1/N-scaled sources), ``pred1.wav``, ``pred2.wav``
  (11025 Hz, 16-bit, the 65280 samples that are scored);
- ``frame1.jpg``, ``frame2.jpg``: the centre frame of each video;
- ``mix.png`` (log magnitude of the mixture), ``gtmask{k}.png`` / ``predmask{k}.png`` (binary
  ground-truth mask and predicted mask probability), ``gtamp{k}.png`` / ``predamp{k}.png``
  (log magnitude of the source and of mixture x binarised predicted mask); all on the warped
  256-row log-frequency axis the model sees, low frequencies at the bottom.

``examples/index.html`` is a table of them with audio players and the mixture's SDR/SIR/SAR;
``qualitative.png`` puts a few mixtures side by side (rows) as paper Fig. 3 does. A picture that
fails is reported and skipped; the tables (:mod:`pipeline.evaluate.separation`) are written before this.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.io import wavfile  # noqa: E402

from pipeline import atomic  # noqa: E402
from pipeline.data import spectrogram as sp
from pipeline.evaluate.separation import N_MIX, Evaluation, Example
from pipeline.schema import EvaluateParams

LOG_EPS = 1e-4   # floor of the magnitude pictures (log scale)


def folder_name(ex: Example) -> str:
    m = ex.mixture
    return f"{m.set}-{m.index:03d}-{'+'.join(m.video_ids)}"


def log_mag(mag: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(mag, LOG_EPS))


def _wav(path: Path, wave: np.ndarray) -> None:
    pcm = np.round(np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)
    wavfile.write(path, sp.SAMPLE_RATE, pcm)


def _image(path: Path, a: np.ndarray, cmap: str, vmin: float, vmax: float) -> None:
    plt.imsave(path, a, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower")


def write_example(ex: Example, folder: Path) -> None:
    """One mixture's wavs and pictures into ``folder`` (SoP's visualisation names)."""
    folder.mkdir(parents=True, exist_ok=True)
    lo, hi = float(log_mag(ex.mag_mix).min()), float(log_mag(ex.mag_mix).max())
    _wav(folder / "mix.wav", ex.mix)
    _image(folder / "mix.png", log_mag(ex.mag_mix), "magma", lo, hi)
    for k in range(N_MIX):
        _wav(folder / f"gt{k + 1}.wav", ex.refs[k])
        _wav(folder / f"pred{k + 1}.wav", ex.ests[k])
        plt.imsave(folder / f"frame{k + 1}.jpg", ex.frames[k])
        _image(folder / f"gtmask{k + 1}.png", ex.masks_gt[k], "gray", 0.0, 1.0)
        _image(folder / f"predmask{k + 1}.png", ex.masks_pred[k], "gray", 0.0, 1.0)
        _image(folder / f"gtamp{k + 1}.png", log_mag(ex.mags_gt[k]), "magma", lo, hi)
        _image(folder / f"predamp{k + 1}.png", log_mag(ex.mags_pred[k]), "magma", lo, hi)


# --------------------------------------------------------------------------------------------
# index.html


def _scores(ex: Example) -> str:
    r = ex.mixture.result
    m = r.mean()
    failed = "".join(f"<br>failed: {html.escape(f)}" for f in r.failed if f)
    return (f"SDR {m['sdr']:.2f}<br>SIR {m['sir']:.2f}<br>SAR {m['sar']:.2f}"
            f"<br>SDR<sub>mix</sub> {m['sdr_mix']:.2f}{failed}")


def _row(ex: Example, problem: str) -> str:
    name = folder_name(ex)
    src = lambda f: html.escape(f"{name}/{f}")  # noqa: E731
    audio = lambda f: f'<audio controls preload="none" src="{src(f)}"></audio>'  # noqa: E731
    img = lambda f: f'<img src="{src(f)}" width="128">'  # noqa: E731
    m = ex.mixture
    cells = [f"{html.escape(name)}<br>{_scores(ex)}"
             + (f'<br><b class="err">{html.escape(problem)}</b>' if problem else ""),
             f"{img('mix.png')}<br>{audio('mix.wav')}"]
    for k in range(N_MIX):
        label = html.escape(f"{m.video_ids[k]}: {'+'.join(m.classes[k])} ({m.kinds[k]})")
        cells.append(f"{img(f'frame{k + 1}.jpg')}<br>{label}")
        sdr = f"<br>SDR {m.result.sdr[k]:.2f}"
        cells.append(f"GT {audio(f'gt{k + 1}.wav')}<br>pred {audio(f'pred{k + 1}.wav')}{sdr}")
        cells.append(f"{img(f'gtmask{k + 1}.png')}{img(f'predmask{k + 1}.png')}")
        cells.append(f"{img(f'gtamp{k + 1}.png')}{img(f'predamp{k + 1}.png')}")
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def index_html(run: Evaluation, problems: dict[str, str]) -> str:
    head = ["mixture", "mixture spectrogram / audio"]
    for k in range(1, N_MIX + 1):
        head += [f"video {k}", f"audio {k} (GT / predicted)",
                 f"mask {k} (GT | predicted)", f"spectrogram {k} (GT | predicted)"]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>TriBERT separation "
             "examples</title><style>td{vertical-align:top;font:12px sans-serif} "
             "img{margin:1px} .err{color:#b00}</style></head><body>",
             "<h1>Separation examples (test split)</h1>",
             "<p>Spectrograms and masks on the model's log-frequency axis, low frequencies at "
             "the bottom; predicted spectrogram = mixture x binarised predicted mask.</p>"]
    for s in run.sets:
        examples = [e for e in run.examples.get(s.name, []) if folder_name(e) in problems]
        parts.append(f"<h2>{html.escape(s.name)}: {len(run.mixtures.get(s.name, []))} "
                     f"mixtures</h2>")
        if s.note:
            parts.append(f"<p>{html.escape(s.note)}</p>")
        if not examples:
            parts.append("<p>no examples</p>")
            continue
        parts.append("<table border='1' cellspacing='0'><tr>"
                     + "".join(f"<th>{h}</th>" for h in head) + "</tr>")
        parts += [_row(e, problems[folder_name(e)]) for e in examples]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# paper Fig. 3


def qualitative_rows(run: Evaluation, rows: int) -> list[Example]:
    """Up to ``rows`` examples, taken from the sets in turn."""
    pools = [list(run.examples.get(s.name, [])) for s in run.sets]
    out = []
    while len(out) < rows and any(pools):
        for pool in pools:
            if pool and len(out) < rows:
                out.append(pool.pop(0))
    return out


def qualitative_figure(examples: Sequence[Example]):
    """Rows = mixtures; columns: the two frames, the mixture spectrogram, ground-truth and
    predicted masks, ground-truth and predicted spectrograms (paper Fig. 3)."""
    titles = ["video 1", "video 2", "mixture"] + [
        f"{what} {k}" for what in ("GT mask", "pred. mask", "GT spec.", "pred. spec.")
        for k in range(1, N_MIX + 1)]
    n = max(len(examples), 1)
    fig, axes = plt.subplots(n, len(titles), figsize=(1.6 * len(titles), 1.8 * n),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for j, t in enumerate(titles):
        axes[0, j].set_title(t, fontsize=8)
    if not examples:
        axes[0, 0].text(0, 0.5, "no test mixtures", fontsize=9)
    for i, ex in enumerate(examples):
        lo, hi = float(log_mag(ex.mag_mix).min()), float(log_mag(ex.mag_mix).max())
        spec = dict(cmap="magma", vmin=lo, vmax=hi, origin="lower", aspect="auto")
        mask = dict(cmap="gray", vmin=0, vmax=1, origin="lower", aspect="auto")
        cells = [(ex.frames[0], {}), (ex.frames[1], {}), (log_mag(ex.mag_mix), spec)]
        cells += [(ex.masks_gt[k], mask) for k in range(N_MIX)]
        cells += [(ex.masks_pred[k], mask) for k in range(N_MIX)]
        cells += [(log_mag(ex.mags_gt[k]), spec) for k in range(N_MIX)]
        cells += [(log_mag(ex.mags_pred[k]), spec) for k in range(N_MIX)]
        for j, (a, kw) in enumerate(cells):
            axes[i, j].imshow(a, **kw)
        r = ex.mixture.result
        sdr = f"SDR {r.mean()['sdr']:.1f} dB"
        axes[i, 0].set_ylabel(f"{ex.mixture.set} {ex.mixture.index}\n{sdr}", fontsize=7)
    fig.tight_layout()
    return fig


def write_qualitative(run: Evaluation, path: Path, rows: int) -> None:
    fig = qualitative_figure(qualitative_rows(run, rows))
    try:
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------------


def write_report(run: Evaluation, out_dir: str | Path, params: EvaluateParams) -> list[str]:
    """``examples/`` (replaced as a whole) and ``qualitative.png`` under ``out_dir``; returns
    the problems met (a picture that failed), never raising for one example."""
    out_dir = Path(out_dir)
    problems: list[str] = []
    with atomic.atomic_dir(out_dir / "examples") as tmp:
        written: dict[str, str] = {}
        for s in run.sets:
            for ex in run.examples.get(s.name, [])[:params.examples]:
                name = folder_name(ex)
                try:
                    write_example(ex, tmp / name)
                    written[name] = ""
                except Exception as e:  # one picture must not stop the others
                    written[name] = f"{type(e).__name__}: {e}"
                    problems.append(f"example {name}: {written[name]}")
        (tmp / "index.html").write_text(index_html(run, written), encoding="utf-8")
    try:
        write_qualitative(run, out_dir / "qualitative.png", params.qualitative)
    except Exception as e:
        problems.append(f"qualitative.png: {type(e).__name__}: {e}")
    return problems
