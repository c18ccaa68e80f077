#!/usr/bin/env bash
# Install everything this project needs on a fresh Debian machine, idempotently:
#   Debian: ffmpeg, fluidsynth (+ libfluidsynth3), the FluidR3 General MIDI soundfont
#   Python: a virtual environment in .venv with the CPU torch build and the pinned deps
#           (requirements.lock), this project installed editable (the `tribert` command)
# A second run checks and returns in a few seconds.
# Usage: bash scripts/setup.sh [--ray]   (--ray also installs Ray for `executor.backend: ray`)
set -euo pipefail
cd "$(dirname "$0")/.."
export DVC_NO_ANALYTICS=1 PIP_DISABLE_PIP_VERSION_CHECK=1

want_ray=0
[ "${1:-}" = "--ray" ] && want_ray=1

# --- Debian packages ---------------------------------------------------------------------
need_apt=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v fluidsynth >/dev/null 2>&1 || need_apt+=(fluidsynth)
ldconfig -p 2>/dev/null | grep -q libfluidsynth.so || need_apt+=(libfluidsynth3)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need_apt+=(fluid-soundfont-gm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- Python environment ------------------------------------------------------------------
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.setup-stamp
key=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)-ray$want_ray
if [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
  echo "setup: installing Python packages into .venv"
  pipq() { .venv/bin/pip install -q "$@" 2>&1 | grep -v "is ignored: it is neither" || true; }
  # torch first, pinned: the CPU build (an unpinned torch would pull a multi-GB CUDA build)
  pipq torch==2.13.0
  extras="dev"; [ $want_ray = 1 ] && extras="dev,ray"
  pipq -c requirements.lock -e ".[$extras]"
  .venv/bin/python -c "import torch, h5py, librosa, fluidsynth, mediapipe, mir_eval, fast_bss_eval" \
    || { echo "setup: Python packages failed to import" >&2; exit 1; }
  echo "$key" > "$stamp"
fi

# --- DVC ---------------------------------------------------------------------------------
# .dvc/ is committed; a plain copy of the tree (no git) still gets a working DVC repo.
if [ ! -d .dvc ]; then .venv/bin/dvc init -q --no-scm; fi
.venv/bin/dvc config core.analytics false >/dev/null 2>&1 || true
echo "setup: ok ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
