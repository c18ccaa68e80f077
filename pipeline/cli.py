"""The ``tribert`` console script: user-facing commands, each a thin layer over the library.

Sub-commands are imported lazily so ``tribert --help`` is fast and a command whose optional
dependencies are missing does not break the others.
"""
from __future__ import annotations

import importlib
import importlib.util

import click

from pipeline.malloc import keep_freed_memory

# name -> "module:attribute" of a click command or group
COMMANDS = {
    "synth": "pipeline.data.synth.cli:synth",
    "inspect": "pipeline.tools.inspect:inspect_cmd",
    "bench": "pipeline.tools.bench:bench",
    "separate": "pipeline.tools.separate:separate_cmd",
    "compare": "pipeline.tools.compare:compare_cmd",
    "styles": "pipeline.tools.styles:styles_cmd",
    "params": "pipeline.params:params_cmd",
}


class LazyGroup(click.Group):
    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        for name, path in self.lazy.items():
            try:
                if importlib.util.find_spec(path.split(":")[0]) is not None:
                    names.add(name)
            except ModuleNotFoundError:  # its package is not written yet
                pass
        return sorted(names)

    def get_command(self, ctx, name):
        if name in self.lazy:
            mod, _, attr = self.lazy[name].partition(":")
            try:
                return getattr(importlib.import_module(mod), attr)
            except ModuleNotFoundError as e:
                if e.name and mod.startswith(e.name):
                    return None
                raise
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="tribert")
def main():
    """TriBERT reproduction: data pipeline, model, training and evaluation tools."""
    keep_freed_memory()  # pipeline/malloc.py: no page faults on every step's buffers


if __name__ == "__main__":  # pragma: no cover
    main()
