"""params.yaml validation: every section loads into a frozen pydantic model, and a bad value fails
before any work with a message naming the file and the dotted key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipeline.params import ParamsError, load_params, params_hash


def _write(tmp_path, data) -> str:
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_project_params_load(root):
    p = load_params(root / "params.yaml")
    assert p.data.source == "synthetic"
    assert p.executor.jobs >= 1
    with pytest.raises(ValidationError, match="frozen"):
        p.data.seed = 3  # type: ignore[misc]


def test_every_section_in_params_yaml_is_known(root):
    raw = yaml.safe_load((root / "params.yaml").read_text())
    p = load_params(root / "params.yaml")
    assert set(raw) <= set(p.sections)


@pytest.mark.parametrize("data, key", [
    ({"data": {"sauce": 1}}, "data.sauce: unknown key"),
    ({"data": {"synthetic": {"duets": "many"}}}, "data.synthetic.duets: expected an integer"),
    ({"data": {"synthetic": {"duets": -1}}}, "data.synthetic.duets: expected a value >= 0"),
    ({"data": {"synthetic": {"fps": 4}}}, "data.synthetic.fps: expected a value >= 8"),
    ({"data": {"source": "vimeo"}}, "data.source: expected one of"),
    ({"data": {"split": {"val": 0.3, "test": 0.3, "mode": "random"}}}, None),
    ({"data": {"split": {"val": 0.5, "test": 0.5}}}, "data.split.test: val + test must be < 1"),
    ({"data": {"split": {"mode": "official"}}}, "data.split.official_train"),
    ({"executor": {"jobs": 0}}, "executor.jobs: expected a value >= 1"),
    ({"executor": {"backend": "dask"}}, "executor.backend: expected one of"),
    ({"data": {"synthetic": {"same_class_duets": True}}}, "expected a number"),
    ({"nonsense": {}}, "nonsense: unknown section"),
])
def test_bad_values_name_the_key(tmp_path, data, key):
    path = _write(tmp_path, data)
    if key is None:
        load_params(path)
        return
    with pytest.raises(ParamsError) as e:
        load_params(path)
    assert key in str(e.value)
    assert str(path) in str(e.value)


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(ParamsError, match="cannot read params file"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_overrides_apply_before_validation(tmp_path):
    path = _write(tmp_path, {})
    p = load_params(path, {"data.synthetic.duets": 2, "data.seed": 7})
    assert p.data.synthetic.duets == 2 and p.data.seed == 7
    with pytest.raises(ParamsError, match="data.synthetic.duets"):
        load_params(path, {"data.synthetic.duets": -5})


def test_params_hash_is_stable_and_sensitive(tmp_path):
    a = load_params(_write(tmp_path, {})).data
    b = load_params(_write(tmp_path, {"data": {"seed": 1}})).data
    assert params_hash(a) == params_hash(load_params(_write(tmp_path, {})).data)
    assert params_hash(a) != params_hash(b)


@pytest.mark.parametrize("content, message", [
    (b"data:\n  seed: 1\n  source: synth\xe9tic\n", "not UTF-8 text (line 3, byte 31 is 0xe9)"),
    (b"", "empty params file"),
    (b"# only a comment\n", "empty params file"),
    (b"train:\n  grad_clip: 1.0\n  lr: 0.001\n  grad_clip: 2.0\n",
     "train.grad_clip: duplicate key (lines 2 and 4)"),
    (b"data:\n  synthetic:\n    duets: 2\n    duets: 3\n", "data.synthetic.duets: duplicate key"),
    (b"data:\n  seed: 0\ndata:\n  seed: 1\n", "data: duplicate key (lines 1 and 3)"),
    (b"train:\n  grad_clip: .nan\n", "train.grad_clip: expected a finite number, got nan"),
    (b"data:\n  split:\n    val: .nan\n", "data.split.val: expected a finite number"),
    (b"data:\n  synthetic:\n    duration: .inf\n", "data.synthetic.duration: expected a finite"),
])
def test_bad_params_files_are_one_line_errors(tmp_path, content, message):
    """Each used to pass silently (duplicate key: the last won; .nan: every range check is
    false for NaN) or fail with a traceback (bytes that are not UTF-8)."""
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    with pytest.raises(ParamsError) as e:
        load_params(path)
    text = str(e.value)
    assert message in text and str(path) in text
    assert "\n" not in text


def test_bad_params_file_fails_the_stage_cleanly(tmp_path, root):
    """The stage command prints one line naming the file and key, and no traceback."""
    import subprocess
    import sys

    path = tmp_path / "params.yaml"
    path.write_bytes((root / "params.yaml").read_bytes() + b"train:\n  seed: 1\n")
    proc = subprocess.run([sys.executable, "-m", "stages.train", "--params", str(path),
                           "--clips", str(tmp_path / "none")], cwd=root, capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert f"{path}: train: duplicate key" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_unquoted_off_is_the_word_off_not_false(tmp_path):
    """YAML 1.1 reads ``amp: off`` (and DVC's ``-S train.amp=off``) as false."""
    path = tmp_path / "params.yaml"
    path.write_text(Path(__file__).resolve().parents[1].joinpath("params.yaml").read_text()
                    .replace('amp: "off"', "amp: off"))
    assert yaml.safe_load(path.read_text())["train"]["amp"] is False
    assert load_params(path).train.amp == "off"
