"""params.yaml -> frozen, validated pydantic sections (the schema is :mod:`pipeline.schema`).

Each top-level section of params.yaml loads into one frozen pydantic model of
:mod:`pipeline.schema`. Validation happens before any work: an unknown key, a wrong type or an
out-of-range value raises :class:`ParamsError`, one line naming the file and the dotted key
(``params.yaml: decode.fps: expected a value >= 1, got 0``). Beyond the schema, a file with a
key given twice, bytes that are not UTF-8 or no sections at all is refused here.

The section classes are re-exported from here (and from their former modules) so that
``from pipeline.params import SynthParams`` keeps working.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import click
import yaml
from pydantic import BaseModel, ValidationError

from pipeline import schema
from pipeline.atomic import write_text
from pipeline.schema import KeyProblem, ParamsFile
# the sections of the data stages, imported from here before the schema had its own module
from pipeline.schema import (DataParams, DownloadParams, ExecutorParams,  # noqa: F401
                             SplitParams, SynthParams)


class ParamsError(ValueError):
    """A params.yaml problem; the message names the file and the dotted key."""


# --------------------------------------------------------------------------------------------
# pydantic's errors in this project's words


def _dotted(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(loc) -> type[BaseModel] | None:
    """The section model at ``loc`` (a path of field names from the top of the file)."""
    cls: type[BaseModel] = ParamsFile
    for part in loc:
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        ann = field.annotation if field is not None else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        cls = ann
    return cls


def _describe(value) -> str:
    return f"{type(value).__name__} {value!r}"


_EXPECTED = {"int_type": "an integer", "float_type": "a number", "string_type": "a string",
             "tuple_type": "a list", "list_type": "a list", "model_type": "a mapping",
             "dict_type": "a mapping", "model_attributes_type": "a mapping"}
_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
           "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}


def _problem(err: dict) -> str:
    """One pydantic error as ``dotted.key: what is wrong``."""
    loc, kind = list(err["loc"]), err["type"]
    ctx, value = err.get("ctx") or {}, err.get("input")
    if kind == "value_error" and isinstance(ctx.get("error"), KeyProblem):
        loc.append(ctx["error"].key)
    if kind == "extra_forbidden":
        known = list((_model_at(loc[:-1]) or ParamsFile).model_fields)
        what = (f"unknown section (known: {', '.join(known)})" if len(loc) == 1 else
                f"unknown key (known keys: {', '.join(known)})")
    elif kind == "value_error":
        what = str(ctx.get("error", err["msg"]))
    elif kind in _EXPECTED:   # a wrong type: what was expected, and the value's type
        what = f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    elif kind == "bool_type":
        what = f"expected true or false, got {value!r}"
    elif kind == "literal_error":
        what = f"expected one of [{ctx['expected'].replace(' or ', ', ')}], got {value!r}"
    elif kind == "finite_number":
        what = f"expected a finite number, got {value!r}"
    elif kind in _BOUNDS:
        op, bound = _BOUNDS[kind]
        what = f"expected a value {op} {ctx[bound]}, got {value!r}"
    else:
        what = err["msg"]
    return f"{_dotted(loc)}: {' '.join(what.split())}"


def validate_section(name: str, raw: dict | None = None):
    """Section ``name`` of params.yaml from a mapping (``None``: its defaults), validated like
    :func:`load_params` does; errors name the dotted key (``model.heads: ...``)."""
    try:
        return getattr(ParamsFile.model_validate({name: {} if raw is None else raw}), name)
    except ValidationError as e:
        raise ParamsError(_problem(e.errors()[0])) from None


# --------------------------------------------------------------------------------------------
# provenance


def to_dict(obj) -> dict:
    """A section as plain JSON data (for hashing, logging and checkpoints)."""
    if not isinstance(obj, BaseModel):
        raise TypeError(f"not a params section: {type(obj).__name__}")
    return obj.model_dump(mode="json")


def params_hash(*sections) -> str:
    """A short stable hash of sections (pydantic sections or plain JSON-able data): stored in
    outputs to tie them to the params that made them."""
    plain = [to_dict(s) if isinstance(s, BaseModel) else s for s in sections]
    blob = json.dumps(plain, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# the loader


@dataclass(frozen=True)
class Params:
    """All validated sections of one params.yaml, by section name."""

    path: str
    sections: dict

    def __getattr__(self, name):
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name):
        return self.sections[name]


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _refuse_duplicates(node, prefix: str) -> None:
    """A key given twice in one mapping (YAML keeps the last silently) is an error naming the
    dotted key and both lines."""
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            dotted = f"{prefix}.{key}" if prefix else key
            if key in seen:
                raise ParamsError(f"{dotted}: duplicate key (lines {seen[key] + 1} and "
                                  f"{key_node.start_mark.line + 1}); YAML would keep the last")
            seen[key] = key_node.start_mark.line
            _refuse_duplicates(value_node, dotted)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicates(item, f"{prefix}[{i}]")


def apply_overrides(raw: dict, overrides: dict) -> dict:
    """Set each dotted key of ``overrides`` in the parsed params mapping ``raw`` (in place, the
    way ``dvc exp run -S`` edits the file; missing parents are created) and return it."""
    for key, value in overrides.items():
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return raw


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """Load and validate every section of ``path``.

    ``overrides`` maps dotted keys to values (``{"data.synthetic.duets": 2}``) and is applied
    before validation, the way ``dvc exp run -S`` edits the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ParamsError(f"{path}: cannot read params file: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ParamsError(f"{path}: not UTF-8 text (line {line}, byte {e.start} is "
                          f"{data[e.start]:#04x})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _refuse_duplicates(node, "")
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {_one_line(e)}") from None
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
    if raw is None:
        raise ParamsError(f"{path}: empty params file (no sections); every stage needs one")
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    apply_overrides(raw, overrides or {})
    raw = {name: {} if value is None else value for name, value in raw.items()}
    try:
        validated = ParamsFile.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(f"{path}: {_problem(e.errors()[0])}") from None
    return Params(str(path), {name: getattr(validated, name) for name in ParamsFile.model_fields})


# --------------------------------------------------------------------------------------------
# `tribert params`


def load_stage_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """:func:`load_params` for a command: a bad file is a ``click.ClickException`` whose one line
    names the file and the dotted key (every stage starts with this)."""
    try:
        return load_params(path, overrides)
    except ParamsError as e:
        raise click.ClickException(str(e)) from None


_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def parse_overrides(pairs) -> dict:
    """``KEY=VALUE`` strings (dotted keys, YAML values, as ``dvc exp run -S`` takes them) as the
    ``overrides`` mapping of :func:`load_params`."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected key=value")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str) and _YAML12_FLOAT.fullmatch(parsed):
            parsed = float(parsed)   # YAML 1.1 reads 2e-3 as a string; DVC's YAML 1.2 a number
        out[key] = parsed
    return out


@click.group("params")
def params_cmd():
    """The params.yaml schema."""


@params_cmd.command("schema")
@click.option("--out", default=schema.SCHEMA_FILE, show_default=True,
              type=click.Path(dir_okay=False), help="where to write the JSON Schema")
def schema_cmd(out):
    """Write the JSON Schema of params.yaml (editors check params.yaml against it)."""
    click.echo(schema.write_json_schema(out))


@params_cmd.command("set")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--params", "src", default="params.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="the params file to start from")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="the params file to write (atomically)")
def set_cmd(pairs, src, out):
    """Write SRC with KEY=VALUE changes to OUT, as `dvc exp run -S KEY=VALUE` edits params.yaml,
    e.g. `tribert params set --out runs/x/params.yaml train.seed=1 model.erase=pose`. The result
    is validated first: a misspelt key or a bad value fails in one line and writes nothing."""
    try:
        overrides = parse_overrides(pairs)
    except click.BadParameter as e:
        raise click.ClickException(e.message) from None
    load_stage_params(src, overrides)
    text = Path(src).read_text(encoding="utf-8")
    raw = apply_overrides(yaml.safe_load(text), overrides)
    edited = edit_text(text, overrides)
    if yaml.safe_load(edited) != raw:   # a construct the round trip reads otherwise: plain YAML
        edited = yaml.safe_dump(raw, sort_keys=False)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text(out, edited)
    click.echo(out)


def edit_text(text: str, overrides: dict) -> str:
    """The params file ``text`` with ``overrides`` applied and everything else kept: comments,
    order, flow lists and ``null`` spelt as it was (a round trip through ruamel.yaml, which DVC
    itself edits params.yaml with; a file without changes comes back byte for byte)."""
    from ruamel.yaml import YAML

    rt = YAML()
    rt.width = 4096                # never re-wrap a long line
    rt.preserve_quotes = True
    rt.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    data = rt.load(text)
    apply_overrides(data, overrides)
    buf = io.StringIO()
    rt.dump(data, buf)
    return buf.getvalue()
