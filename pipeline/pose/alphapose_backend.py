"""The ``alphapose`` keypoints backend: run a user's own AlphaPose installation on a video.

AlphaPose (MVIG-SJTU/AlphaPose) needs its detector and pose weights (downloaded by the user) and
in practice a CUDA build, so this project does not install it. Configure ``keypoints.alphapose``
with the path to ``scripts/demo_inference.py``, a Halpe-68 (``halpe_68_noface``) config and its
checkpoint; the stage then runs, per video, from the AlphaPose root directory:

    <python> scripts/demo_inference.py --cfg <cfg> --checkpoint <checkpoint> --video <video>
        --outdir <tmp> --gpus <gpus> --sp

and reads ``<tmp>/alphapose-results.json`` with the ``annotations`` parser. Without a
configuration it raises :class:`AlphaposeUnavailable`, which explains how to produce the JSON
files for the ``annotations`` backend instead.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from pipeline import cmdpath
from pipeline.pose.annotations import Detection, read_alphapose
from pipeline.schema import AlphaposeParams

RESULT_NAME = "alphapose-results.json"

HOW_TO = (
    "AlphaPose is not configured (keypoints.alphapose.script, .cfg and .checkpoint in "
    "params.yaml). Either point them at your AlphaPose installation (scripts/demo_inference.py, "
    "a halpe_68_noface config and its checkpoint), or run AlphaPose yourself on each video: "
    "`python scripts/demo_inference.py --cfg <halpe_68_noface cfg> --checkpoint <pth> --video "
    "<id>.mp4 --outdir <dir>`, copy <dir>/alphapose-results.json to data/raw/annotations/<id>.json, "
    "list it in the manifest's annotations column and set keypoints.backend: annotations."
)


class AlphaposeUnavailable(RuntimeError):
    """No AlphaPose installation is configured (the message says what to do instead)."""


def check_config(params: AlphaposeParams) -> Path:
    """The AlphaPose root directory, or :class:`AlphaposeUnavailable` with instructions."""
    missing = [k for k in ("script", "cfg", "checkpoint") if not getattr(params, k)]
    if missing:
        raise AlphaposeUnavailable(HOW_TO)
    script = Path(params.script).resolve()
    for name in ("script", "cfg", "checkpoint"):
        p = Path(getattr(params, name))
        if not p.is_absolute() and name != "script":
            p = script.parent.parent / p
        if not p.exists():
            raise AlphaposeUnavailable(f"keypoints.alphapose.{name}: {p} does not exist. {HOW_TO}")
    return script.parent.parent


def command(video: Path, outdir: Path, params: AlphaposeParams) -> list[str]:
    """The command line that runs AlphaPose on one video (run it with cwd = the AlphaPose root)."""
    return [params.python, str(Path(params.script).resolve()), "--cfg", params.cfg,
            "--checkpoint", params.checkpoint, "--video", cmdpath.arg(video),
            "--outdir", cmdpath.arg(outdir), "--gpus", params.gpus, "--sp"]


def run_alphapose(video: Path, params: AlphaposeParams) -> dict[int, list[Detection]]:
    """Run AlphaPose on ``video``; detections by source frame (as :func:`read_alphapose`)."""
    root = check_config(params)
    with tempfile.TemporaryDirectory(prefix="alphapose-") as tmp:
        cmd = command(video, Path(tmp), params)
        try:
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=params.timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{video}: AlphaPose did not finish in {params.timeout:.0f} s") from None
        result = Path(tmp) / RESULT_NAME
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"{video}: AlphaPose failed (exit {proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-500:]}\ncommand: {' '.join(cmd)}")
        return read_alphapose(result)
