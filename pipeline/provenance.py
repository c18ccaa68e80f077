"""What made a result: the record written beside every model file and metrics file the stages
write (issue 12, item 12), in the spirit of experiment trackers' run metadata and ESPnet's
result tables.

:func:`collect` returns one plain dict:

- ``stage``, ``command`` (argv), ``started`` (UTC, ISO 8601), ``wall_s``;
- ``git``: ``commit`` and ``dirty`` (tracked files differ from the commit; untracked files are
  not counted) of the project's checkout, or null outside a git checkout;
- ``params``: the resolved sections (defaults filled in, validated) of this stage and of every
  stage upstream of it in ``dvc.yaml`` (a stage's params plus those of the stages whose outputs
  it reads, transitively), with any ``resolved`` values the stage computed itself (e.g. the
  model preset's learning rate) under their section;
- ``data``: a fingerprint of the inputs read: per path its size and SHA-256 (a folder: of its
  files' names, sizes and SHA-256s), and one ``sha256`` over all of them;
- ``libraries``: python, torch, numpy, h5py, librosa, dvc versions (installed metadata; nothing
  is imported for it);
- ``machine``: :func:`cpu_info` (CPU model, the SIMD instruction-set flags the kernel reports,
  the capability torch dispatches to), ``device`` (and the GPU's name), ``threads`` (torch's
  intra-op threads, ``OMP_NUM_THREADS``, CPUs available), host OS;
- ``seed`` and any ``extra`` fields the stage adds (e.g. the best val figures).

Where it goes: a model package (a ``.pt`` dict) carries it under the key ``"provenance"``
(:func:`attach`; still plain data, so it loads with ``weights_only=True``); a metrics file gets
``provenance.json`` in its folder (:func:`write`).
"""
from __future__ import annotations

import io

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Optional

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("torch", "numpy", "h5py", "librosa", "dvc")
# SIMD flags worth reporting (x86 /proc/cpuinfo "flags", ARM "Features")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16",
             "amx_int8", "asimd", "sve", "sve2", "bf16", "i8mm")


# --------------------------------------------------------------------------------------------
# the machine


def cpu_info() -> dict:
    """{"model", "isa": [flags], "torch_capability", "cores"}; every field best-effort."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "Hardware") and model in ("", platform.machine(),
                                                                         platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model or "unknown", "isa": [f for f in ISA_FLAGS if f in flags],
            "torch_capability": _torch_capability(), "cores": os.cpu_count()}


def _torch_capability() -> Optional[str]:
    """The CPU kernel level torch dispatches to (e.g. AVX2, AVX512), if torch is loaded or
    cheap to load here."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:   # an old torch, or no torch at all
        return None


def cpu_line(info: dict | None = None) -> str:
    """One line: the CPU model and its SIMD instruction sets (printed beside benchmarks)."""
    info = info or cpu_info()
    cap = f"; torch kernels: {info['torch_capability']}" if info.get("torch_capability") else ""
    return f"{info['model']} ({info['cores']} CPUs; {' '.join(info['isa']) or 'no SIMD flags'}{cap})"


def machine(device: str | None = None) -> dict:
    """CPU, device, threads and OS of this process."""
    out = {"cpu": cpu_info(), "os": platform.platform(), "device": device or "cpu"}
    try:
        import torch

        out["threads"] = {"torch": torch.get_num_threads(),
                          "torch_interop": torch.get_num_interop_threads()}
        if torch.cuda.is_available():
            out["gpu"] = {"name": torch.cuda.get_device_name(0),
                          "count": torch.cuda.device_count(), "cuda": torch.version.cuda}
    except ImportError:
        out["threads"] = {}
    out["threads"]["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS")
    out["threads"]["cpus_available"] = (len(os.sched_getaffinity(0))
                                        if hasattr(os, "sched_getaffinity") else os.cpu_count())
    return out


# --------------------------------------------------------------------------------------------
# code, libraries, params, data


def git_state(root: Path = ROOT, ignore: Iterable[str] = ()) -> Optional[dict]:
    """{"commit", "dirty", "changed"} of the checkout at ``root``; None outside git (or without
    git). Tracked files under ``ignore`` (the pipeline's own outputs and ``dvc.lock``, which a
    running ``dvc repro`` rewrites) do not make the tree dirty."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=30)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return None
    skip = tuple(str(i).rstrip("/") for i in ignore)
    changed = [f for f in (line[3:].strip('"') for line in status.stdout.splitlines())
               if not any(f == i or f.startswith(i + "/") for i in skip)]
    return {"commit": head.stdout.strip(), "dirty": bool(changed), "changed": changed[:20]}


def libraries() -> dict:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def pipeline_outputs(dvc_yaml: Path) -> list[str]:
    """Every out, metrics and plots path of ``dvc_yaml``, and ``dvc.lock``."""
    import yaml

    try:
        stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    except (OSError, yaml.YAMLError):
        return ["dvc.lock"]
    out = ["dvc.lock"]
    for s in stages.values():
        for kind in ("outs", "metrics", "plots"):
            out += [next(iter(i)) if isinstance(i, dict) else str(i) for i in s.get(kind) or []]
    return out


def upstream_params(stage: str, dvc_yaml: Path) -> list[str]:
    """The params keys of ``stage`` and of every stage whose outputs it reads, transitively,
    from ``dvc_yaml`` (empty when the file or the stage is absent)."""
    import yaml

    try:
        stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    except (OSError, yaml.YAMLError):
        return []
    if stage not in stages:
        return []

    def names(items):
        return [next(iter(i)) if isinstance(i, dict) else str(i) for i in items or []]

    producer = {out: name for name, s in stages.items()
                for out in names(s.get("outs")) + names(s.get("metrics")) + names(s.get("plots"))}
    keys, seen, todo = [], set(), [stage]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for k in names(stages[name].get("params")):
            if k not in keys:
                keys.append(k)
        for dep in names(stages[name].get("deps")):
            if dep in producer:
                todo.append(producer[dep])
    return keys


def params_record(params, keys: Iterable[str], resolved: dict | None = None) -> dict:
    """The validated values of ``keys`` (sections or dotted keys) of a loaded
    :class:`pipeline.params.Params`, nested by section, with ``resolved`` merged over them."""
    from pipeline.params import to_dict

    out: dict = {}
    for key in keys:
        section, _, rest = key.partition(".")
        try:
            value = to_dict(params[section])
        except (KeyError, TypeError):
            continue
        for part in rest.split(".") if rest else []:
            value = value.get(part) if isinstance(value, dict) else None
        if rest:
            out.setdefault(section, {})[rest] = value
        else:
            out[section] = value
    for section, values in (resolved or {}).items():
        out[section] = {**out.get(section, {}), **values} if isinstance(values, dict) else values
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(paths: Iterable[str | Path]) -> dict:
    """Per input path its size and SHA-256 (a folder: over its files' relative names, sizes and
    SHA-256s, temporaries excluded), and one ``sha256`` over all of them."""
    entries, total = {}, hashlib.sha256()
    for p in paths:
        if p is None or str(p) == "":
            continue
        p = Path(p)
        if p.is_file():
            entry = {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
        elif p.is_dir():
            h, size, n = hashlib.sha256(), 0, 0
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                rel = f.relative_to(p).as_posix()
                if rel.startswith(".") or "/." in rel:
                    continue          # temporaries and work folders (.tmp-*, .work)
                size += f.stat().st_size
                n += 1
                h.update(f"{rel}\0{f.stat().st_size}\0{file_sha256(f)}\n".encode())
            entry = {"files": n, "bytes": size, "sha256": h.hexdigest()}
        else:
            entry = {"missing": True}
        entries[p.as_posix()] = entry
        total.update(f"{p.as_posix()}\0{entry.get('sha256', 'missing')}\n".encode())
    return {"sha256": total.hexdigest(), "inputs": entries}


# --------------------------------------------------------------------------------------------
# the record


def collect(stage: str, params=None, inputs: Iterable[str | Path] = (), seed: int | None = None,
            device: str | None = None, started: float | None = None,
            resolved: dict | None = None, extra: dict | None = None,
            dvc_yaml: str | Path = "dvc.yaml") -> dict:
    """The provenance record of a result of ``stage`` (module docstring). ``params``: the loaded
    :class:`pipeline.params.Params`; ``inputs``: the files and folders it read; ``started``:
    :func:`time.time` at the stage's start (wall time is measured up to now)."""
    now = time.time()
    keys = upstream_params(stage, Path(dvc_yaml)) if params is not None else []
    if params is not None and not keys:
        keys = [stage]
    record = {
        "stage": stage,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "started": _iso(started if started is not None else now),
        "wall_s": round(now - started, 3) if started is not None else None,
        "git": git_state(ignore=pipeline_outputs(Path(dvc_yaml))),
        "params": params_record(params, keys, resolved) if params is not None else {},
        "params_file": str(getattr(params, "path", "")) or None,
        "data": fingerprint(inputs),
        "libraries": libraries(),
        "machine": machine(device),
        "seed": seed,
    }
    record.update(extra or {})
    return json.loads(json.dumps(record, default=str))   # plain JSON data, as written


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


def write(folder: str | Path, record: dict) -> Path:
    """``folder/provenance.json`` (atomic)."""
    from pipeline import atomic

    path = Path(folder) / "provenance.json"
    atomic.write_json(path, record, indent=1)
    return path


def attach(model_file: str | Path, record: dict) -> None:
    """Store ``record`` in the package dict at ``model_file`` under ``"provenance"`` (atomic
    rewrite; the weights are unchanged)."""
    import torch

    from pipeline import atomic

    pkg = torch.load(model_file, map_location="cpu", weights_only=True)
    if not isinstance(pkg, dict):
        raise ValueError(f"{model_file}: not a package dict; cannot attach provenance")
    pkg["provenance"] = record
    buf = io.BytesIO()            # through a buffer: equal contents give equal bytes (a file's
    torch.save(pkg, buf)          # zip records would carry its temporary name)
    atomic.write_bytes(model_file, buf.getvalue())
