"""``tribert compare A B``: the paired difference between two evaluations of the same mixtures.

Two runs of ``evaluate`` (two DVC experiments, two seeds, a variant and its baseline) score the
same fixed test mixtures, so their difference is best measured mixture by mixture: the mean of
the per-mixture differences ``A - B`` with its 95% percentile-bootstrap interval (resampling the
mixtures, as ``evaluate``'s intervals of the means do), and beside it the interval of resampling the
test videos the mixtures are made of (mixtures share videos: whether the difference would hold on
other videos of the same kind). Because both runs share each mixture's difficulty, the paired
interval is much narrower than the two runs' own intervals suggest.

A and B are ``evaluate`` output directories or their ``mixtures.csv``. Every set present in
both (``single``, ``multi``) is compared; the runs must list the same mixtures (set, index and
both videos), otherwise the command stops with the first mixture that differs. Failed
estimates are already scored (``metrics.FAILURE_DB``) in ``mixtures.csv``, so they count here
too.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import click
import numpy as np

from pipeline.separation.metrics import mean_ci, mean_ci_units

KEY = ("set", "index", "video_1", "video_2")
METRICS = ("sdr", "si_sdr", "sir", "sar", "ratio_sdr", "binary_sdr", "normalized_sdr", "swap_sdr",
           "mask_gap")


def read_mixtures(path: str | Path) -> dict[str, list[dict]]:
    """The rows of an evaluation's mixtures.csv (``path`` or ``path/mixtures.csv``) by set."""
    path = Path(path)
    if path.is_dir():
        path = path / "mixtures.csv"
    if not path.is_file():
        raise click.ClickException(f"{path}: no such file (give an evaluate output directory "
                                   f"or its mixtures.csv)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in KEY + ("sdr", "sdr_mix") if c not in (reader.fieldnames or ())]
        if missing:
            raise click.ClickException(f"{path}: not an evaluate mixtures.csv "
                                       f"(no column {', '.join(missing)})")
        out: dict[str, list[dict]] = {}
        for row in reader:
            out.setdefault(row["set"], []).append(row)
    if not out:
        raise click.ClickException(f"{path}: no mixtures")
    return out


def _value(row: dict, metric: str, path) -> float:
    try:
        return float(row[metric])
    except (KeyError, TypeError, ValueError):
        raise click.ClickException(f"{path}: mixture {row['set']} {row['index']} has no "
                                   f"number for {metric!r}") from None


def paired(a: dict[str, list[dict]], b: dict[str, list[dict]], metric: str = "sdr",
           a_name: str = "A", b_name: str = "B") -> dict:
    """Per set in both runs: n, each run's mean, and the mean paired difference A - B with its
    95% bootstrap interval (resampling the mixtures; ``videos_lo/hi``: resampling the videos
    they are made of, :func:`mean_ci_units`) and the share of mixtures where A is higher."""
    sets = [s for s in a if s in b]
    if not sets:
        raise click.ClickException(f"{a_name} and {b_name} share no set of mixtures "
                                   f"({sorted(a)} against {sorted(b)})")
    out = {}
    for s in sets:
        ra, rb = a[s], b[s]
        if len(ra) != len(rb):
            raise click.ClickException(f"set {s}: {a_name} has {len(ra)} mixtures, {b_name} "
                                       f"{len(rb)}: not the same test mixtures")
        for x, y in zip(ra, rb):
            if tuple(x[k] for k in KEY) != tuple(y[k] for k in KEY):
                raise click.ClickException(
                    f"set {s}, mixture {x['index']}: {a_name} has {x['video_1']} + "
                    f"{x['video_2']}, {b_name} has {y['video_1']} + {y['video_2']} "
                    f"(index {y['index']}): not the same test mixtures")
        va = np.array([_value(r, metric, a_name) for r in ra])
        vb = np.array([_value(r, metric, b_name) for r in rb])
        d = va - vb
        ci = mean_ci(d)
        vid = mean_ci_units(d, [(r["video_1"], r["video_2"]) for r in ra])
        out[s] = {"mixtures": len(d), "a": float(va.mean()), "b": float(vb.mean()),
                  "difference": ci["mean"], "lo": ci["lo"], "hi": ci["hi"],
                  "videos": vid["units"], "videos_lo": vid["lo"], "videos_hi": vid["hi"],
                  "a_higher": float(np.mean(d > 0)),
                  "mixture": float(np.mean([float(r["sdr_mix"]) for r in ra]))}
    return out


def render(table: dict, metric: str, a_name: str, b_name: str) -> str:
    lines = [f"{metric}: A = {a_name}, B = {b_name} (dB; mixture = the mixture's SDR)",
             f"{'set':<7}{'mixtures':>9}{'mixture':>9}{'A':>8}{'B':>8}{'A - B':>8}"
             f"{'95% CI':>17}{'A higher':>10}{'95% CI, videos':>20}"]
    for s, r in table.items():
        lines.append(f"{s:<7}{r['mixtures']:>9}{r['mixture']:>9.2f}{r['a']:>8.2f}{r['b']:>8.2f}"
                     f"{r['difference']:>+8.2f}   [{r['lo']:+6.2f}, {r['hi']:+6.2f}]"
                     f"{100 * r['a_higher']:>9.0f}%"
                     f"   [{r['videos_lo']:+6.2f}, {r['videos_hi']:+6.2f}]")
    return "\n".join(lines)


@click.command("compare")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--metric", type=click.Choice(METRICS), default="sdr", show_default=True,
              help="the mixtures.csv column to compare (each mixture's mean over its sources)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def compare_cmd(a, b, metric, as_json):
    """Paired difference A - B of two evaluations of the same test mixtures (evaluate output
    directories or their mixtures.csv), per set, with 95% bootstrap intervals."""
    table = paired(read_mixtures(a), read_mixtures(b), metric, str(a), str(b))
    if as_json:
        click.echo(json.dumps({"metric": metric, "a": str(a), "b": str(b), "sets": table}))
    else:
        click.echo(render(table, metric, str(a), str(b)))
