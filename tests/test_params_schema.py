"""The one params schema (pipeline/schema.py): the committed params.schema.json is what the code
exports, params.yaml points editors at it and satisfies it, and a bad edit of a copy of
params.yaml fails load_params with one line naming the file and the dotted key."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from pipeline import schema
from pipeline.params import ParamsError, load_params


def test_committed_schema_is_what_the_code_exports(root):
    committed = (root / schema.SCHEMA_FILE).read_text()
    assert committed == schema.json_schema_text(), (
        f"{schema.SCHEMA_FILE} is stale: run `python -m pipeline.schema` (or "
        f"`tribert params schema`) and commit it")


def test_params_yaml_points_editors_at_the_schema(root):
    first = (root / "params.yaml").read_text().splitlines()[0]
    assert first == f"# yaml-language-server: $schema={schema.SCHEMA_FILE}"


def test_params_yaml_satisfies_the_json_schema(root):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    validator = jsonschema.Draft202012Validator(json.loads((root / schema.SCHEMA_FILE).read_text()))
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}"
              for e in validator.iter_errors(yaml.safe_load((root / "params.yaml").read_text()))]
    assert not errors
    # and the schema does check: an unknown key and a value out of range are refused
    bad = {"train": {"grad_clipp": 1.0}, "decode": {"fps": 0}}
    assert len(list(validator.iter_errors(bad))) == 2


def _edited(root, tmp_path, section: str, key: str, value):
    data = yaml.safe_load((root / "params.yaml").read_text())
    data[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("section, key, value, message", [
    ("train", "grad_clipp", 1.0, "train.grad_clipp: unknown key (known keys: seed, lr,"),
    ("decode", "fps", 0, "decode.fps: expected a value >= 1, got 0"),
    ("probe", "lr", 0.0, "probe.lr: expected a value > 0.0, got 0.0"),
    ("model", "image_size", 1000, "model.image_size: expected a value <= 448, got 1000"),
    ("train", "schedule", "linear", "train.schedule: expected one of ['constant', 'cosine'], "
                                    "got 'linear'"),
    ("model", "backbone", "vgg", "model.backbone: expected one of"),
    ("train", "betas", [0.9], "train.betas: expected 2 items, got 1"),
    ("train", "betas", [0.9, "x"], "train.betas[1]: expected a number, got str 'x'"),
    ("executor", "jobs", "2", "executor.jobs: expected an integer, got str '2'"),
    ("retrieval", "width", 20, "retrieval.width: must be a multiple of 8"),
    ("model", "heads", 3, "model.hidden_visual: 64 is not a multiple of heads=3"),
    ("model", "unet_harmonics", [1, 0], "model.unet_harmonics: expected ratios in (0, 64], got "
                                        "[1.0, 0.0]"),
])
def test_a_bad_edit_is_one_line_naming_the_dotted_key(root, tmp_path, section, key, value,
                                                      message):
    path = _edited(root, tmp_path, section, key, value)
    with pytest.raises(ParamsError) as e:
        load_params(path)
    text = str(e.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "\n" not in text


def test_sections_are_frozen_hashable_and_replace_validates(root):
    p = load_params(root / "params.yaml")
    assert hash(p.train) == hash(p.train.replace())
    assert p.train.replace(grad_clip=1.0).grad_clip == 1.0
    with pytest.raises(ValueError, match="grad_clip"):
        p.train.replace(grad_clip=-1.0)


def test_the_schema_module_does_not_import_torch():
    code = "import sys, pipeline.params; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_writes_the_schema(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    out = tmp_path / "s.json"
    r = CliRunner().invoke(main, ["params", "schema", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text() == schema.json_schema_text()


def test_params_set_writes_the_changes_and_keeps_the_rest(root, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    out = tmp_path / "v" / "params.yaml"
    r = CliRunner().invoke(main, ["params", "set", "--params", str(root / "params.yaml"), "--out",
                                  str(out), "train.seed=1", "model.erase=pose", "train.lr=2e-3"])
    assert r.exit_code == 0, r.output
    base = yaml.safe_load((root / "params.yaml").read_text())
    got = yaml.safe_load(out.read_text())
    assert got["train"]["seed"] == 1 and got["model"]["erase"] == "pose"
    assert got["train"]["lr"] == 0.002
    for key in ("seed", "lr"):
        base["train"][key] = got["train"][key]
    base["model"]["erase"] = "pose"
    assert got == base
    assert load_params(out).train.seed == 1
    # only the three changed lines differ, each keeping its comment
    src, new = (root / "params.yaml").read_text().splitlines(), out.read_text().splitlines()
    assert len(src) == len(new)
    changed = [(a, b) for a, b in zip(src, new) if a != b]
    assert [b.split("#")[0].split() for _, b in changed] == [["erase:", "pose"], ["seed:", "1"],
                                                            ["lr:", "0.002"]]
    assert all(a.partition("#")[2] == b.partition("#")[2] for a, b in changed)


def test_params_set_without_changes_copies_the_file_byte_for_byte(root, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    out = tmp_path / "params.yaml"
    r = CliRunner().invoke(main, ["params", "set", "--params", str(root / "params.yaml"), "--out",
                                  str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == (root / "params.yaml").read_bytes()


@pytest.mark.parametrize("pair, words", [("train.sed=1", "train.sed"), ("train.seed", "key=value"),
                                          ("train.lr=fast", "train.lr")])
def test_params_set_refuses_a_bad_change_in_one_line_and_writes_nothing(root, tmp_path, pair, words):
    from click.testing import CliRunner

    from pipeline.cli import main

    out = tmp_path / "params.yaml"
    r = CliRunner().invoke(main, ["params", "set", "--params", str(root / "params.yaml"), "--out",
                                  str(out), pair])
    assert r.exit_code != 0
    assert words in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not out.exists()


def test_the_pitch_term_needs_the_model_s_pitch_activations_in_one_line(root):
    with pytest.raises(ParamsError) as e:
        load_params(root / "params.yaml", {"train.loss.pitch": 0.5})
    assert "train.loss.pitch: a weight > 0 needs model.arch tribert, model.motion > 0 and " \
        "model.motion_pitch > 0" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ParamsError, match="model.motion_pitch: motion_pitch > 0 needs motion"):
        load_params(root / "params.yaml", {"model.motion_pitch": 12, "model.motion": 0})
    p = load_params(root / "params.yaml", {"train.loss.pitch": 0.5, "model.motion_pitch": 12})
    assert p.model.motion_pitch == 12 and p.train.loss.pitch == 0.5


def test_the_separated_term_needs_a_critic_in_one_line(root):
    with pytest.raises(ParamsError) as e:
        load_params(root / "params.yaml", {"train.loss.separated": 0.5})
    assert "train.loss.separated: a weight > 0 needs model.arch tribert and model.critic > 0" \
        in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ParamsError, match="train.loss.separated"):
        load_params(root / "params.yaml", {"train.loss.separated": 0.5, "model.critic": 8,
                                           "model.arch": "sop"})
    p = load_params(root / "params.yaml", {"train.loss.separated": 0.5, "model.critic": 8})
    assert p.model.critic == 8 and p.train.loss.separated == 0.5


def test_oracle_conditioning_is_tribert_s_in_one_line(root):
    with pytest.raises(ParamsError, match="model.oracle: oracle conditioning is TriBERT's") as e:
        load_params(root / "params.yaml", {"model.oracle": True, "model.arch": "sop"})
    assert "\n" not in str(e.value)
    assert load_params(root / "params.yaml", {"model.oracle": True}).model.oracle is True


def test_the_bins_term_needs_the_bin_classes_head_in_one_line(root):
    with pytest.raises(ParamsError) as e:
        load_params(root / "params.yaml", {"train.loss.bins": 1.0})
    assert "train.loss.bins: a weight > 0 needs model.arch tribert and model.bin_classes " \
        "true" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ParamsError, match="model.bin_classes: bin_classes needs arch tribert "
                                          "and synthesizer > 0"):
        load_params(root / "params.yaml", {"model.bin_classes": True, "model.synthesizer": 0})
    p = load_params(root / "params.yaml", {"train.loss.bins": 1.0, "model.bin_classes": True})
    assert p.model.bin_classes and p.train.loss.bins == 1.0
