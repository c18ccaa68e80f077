"""``tribert styles EVAL``: an evaluation's mixtures grouped by the composer style of their parts.

The embedded data's composer gives every class one style (``pipeline.data.styles.STYLES``:
melody, chords, arpeggio, bass, drums, congas). A model can tell two parts apart by their style
(rhythm, texture, register) without hearing the instruments' timbre; two parts of one style but
different classes (violin and saxophone, guzheng and pipa) it can only split by timbre, or by
each performer's own timing and pitch from the video. This table says which of the two the model
has learned: per pair of styles, the mixtures, their mean improvement over the mixture, the share
of parts at least 6 dB above it (what ``tribert bench separate`` counts) and the mean drop when
the two videos are swapped; then the same over every mixture of different styles, of one style
and different classes, and of one class. Read from ``mixtures.csv`` (``EVAL`` is an ``evaluate``
output directory or that file); a class the composer does not know (a MUSIC run) is refused.
"""
from __future__ import annotations

from collections import defaultdict

import click
import numpy as np

from pipeline.data.styles import STYLES
from pipeline.tools.compare import read_mixtures

SEPARATED_DB = 6.0
COLUMNS = ("classes_1", "classes_2", "sdr_1", "sdr_2", "sdr_mix_1", "sdr_mix_2")


def style_of(classes: str) -> str:
    """The style of a part's class (a duet's ``a+b``: both styles joined with ``+``)."""
    names = classes.split("+")
    unknown = [c for c in names if c not in STYLES]
    if unknown:
        raise click.ClickException(f"class {unknown[0]!r} has no composer style (only the "
                                   f"embedded synthetic data's classes have one)")
    return "+".join(sorted(STYLES[c] for c in names))


def _row(name: str, rows: list[dict]) -> dict:
    gains = np.array([[float(r["sdr_1"]) - float(r["sdr_mix_1"]),
                       float(r["sdr_2"]) - float(r["sdr_mix_2"])] for r in rows])
    swapped = [float(r["sdr"]) - float(r["swap_sdr"]) for r in rows if r.get("swap_sdr")]
    return {"group": name, "mixtures": len(rows), "improvement": float(gains.mean()),
            "parts_separated": float((gains >= SEPARATED_DB).mean()),
            "swap_drop": float(np.mean(swapped)) if swapped else None}


def style_table(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(per style pair, worst first; the three summary groups) for one set's mixtures rows."""
    pairs, groups = defaultdict(list), defaultdict(list)
    for r in rows:
        a, b = sorted((style_of(r["classes_1"]), style_of(r["classes_2"])))
        pairs[f"{a} / {b}"].append(r)
        if r["classes_1"] == r["classes_2"]:
            groups["same class"].append(r)
        elif a == b:
            groups["same style, different classes"].append(r)
        else:
            groups["different styles"].append(r)
    table = sorted((_row(k, v) for k, v in pairs.items()), key=lambda x: x["improvement"])
    order = ("different styles", "same style, different classes", "same class")
    return table, [_row(k, groups[k]) for k in order if groups[k]]


def _markdown(table: list[dict]) -> str:
    lines = ["| styles | mixtures | over the mixture (dB) | parts >= +6 dB | swap drop (dB) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for t in table:
        drop = "-" if t["swap_drop"] is None else f"{t['swap_drop']:.1f}"
        lines.append(f"| {t['group']} | {t['mixtures']} | {t['improvement']:+.2f} | "
                     f"{t['parts_separated']:.2f} | {drop} |")
    return "\n".join(lines)


@click.command("styles")
@click.argument("evaluation")
@click.option("--set", "which", type=click.Choice(["single", "multi"]), default="single",
              show_default=True)
def styles_cmd(evaluation, which):
    """EVALUATION's mixtures by the composer style of their two parts (markdown tables)."""
    rows = read_mixtures(evaluation).get(which)
    if not rows:
        raise click.ClickException(f"{evaluation}: no {which} mixtures")
    missing = [c for c in COLUMNS if c not in rows[0]]
    if missing:
        raise click.ClickException(f"{evaluation}: mixtures.csv has no column {missing[0]} "
                                   f"(written by an older evaluate?)")
    table, summary = style_table(rows)
    click.echo(_markdown(table))
    click.echo()
    click.echo(_markdown(summary))
