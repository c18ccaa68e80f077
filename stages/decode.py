"""DVC stage ``decode``: every available video of ``data/raw/manifest.csv`` -> clip windows in
HDF5 shards under ``data/clips/`` (plus ``status.csv`` and ``summary.json``).

    python -m stages.decode --params params.yaml

Reads the ``decode`` and ``executor`` sections. Interrupted runs resume: see pipeline/data/decode.py.
"""
from __future__ import annotations

import click

from pipeline.data import checks, decode
from pipeline.params import load_stage_params, parse_overrides


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--manifest", default="data/raw/manifest.csv", show_default=True)
@click.option("--out", default="data/clips", show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="override a params key, e.g. --set executor.jobs=1")
@click.option("--progress/--no-progress", default=True)
def main(params_path, manifest, out, sets, progress):
    """Decode videos into clip shards."""
    params = load_stage_params(params_path, parse_overrides(sets))
    checks.input_file(manifest, "manifest", "run the acquire stage: dvc repro acquire")
    checks.output_path(out, folder=True)
    try:
        summary = decode.run(manifest, out, params.decode, params.executor, progress=progress)
    except decode.NothingDecoded as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"decode: {summary['decoded']} of {summary['manifest_rows']} videos -> "
               f"{sum(summary['clips'].values())} clips in {summary['shards']} shards "
               f"({summary['skipped']} skipped, {summary['failed']} failed)")
    if not summary["shards"]:
        raise click.ClickException(f"no video gave a clip; see {out}/status.csv")


if __name__ == "__main__":  # pragma: no cover
    main()
