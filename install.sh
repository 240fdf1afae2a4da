#!/usr/bin/env bash
# Set up ReID Video Search on Linux or macOS: a virtual environment in .venv, the project
# with the right ONNX Runtime, and the default models.
#
#   ./install.sh                      # download / export the default models
#   ./install.sh --offline DIR        # take model files (or checkpoints) from DIR instead
#
# Options:
#   --offline DIR   take models from a local folder, never download them
#   --cpu | --gpu   force onnxruntime (CPU) or onnxruntime-gpu (default: gpu if nvidia-smi sees one)
#   --no-models     skip the model step
#   --python EXE    Python 3.10+ to build the environment with (default: python3)
set -euo pipefail

cd "$(dirname "$0")"
PYTHON=python3
OFFLINE=""
ORT=""
MODELS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --offline) OFFLINE="${2:?--offline needs a folder}"; shift 2 ;;
        --cpu) ORT=onnxruntime; shift ;;
        --gpu) ORT=onnxruntime-gpu; shift ;;
        --no-models) MODELS=0; shift ;;
        --python) PYTHON="${2:?--python needs an executable}"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }

# 1. System libraries Qt needs (Debian/Ubuntu). As root we install them; otherwise we say how.
QT_DEBS="libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
libxcb-randr0 libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1 libpulse0"
if command -v apt-get >/dev/null 2>&1; then
    missing=""
    for p in $QT_DEBS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ]; then
            step "Installing system libraries for Qt: $missing"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
        else
            echo "Qt needs these system libraries; please run:"
            echo "  sudo apt-get install -y --no-install-recommends $missing"
        fi
    fi
fi

# 2. The virtual environment.
step "Creating the virtual environment in .venv"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "install.sh: Python 3.10 or newer is needed ($PYTHON is older)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PY=.venv/bin/python
"$PY" -m pip install -q --upgrade pip

# 3. torch first and pinned (a bare `torch` would pull several GB of CUDA packages).
step "Installing torch 2.13.0"
"$PY" -m pip install -q torch==2.13.0

# 4. One ONNX Runtime: the GPU build where an NVIDIA GPU is present (it also runs on CPU).
if [ -z "$ORT" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        ORT=onnxruntime-gpu
    else
        ORT=onnxruntime
    fi
fi
OTHER=onnxruntime-gpu; [ "$ORT" = onnxruntime-gpu ] && OTHER=onnxruntime
if "$PY" -m pip show -q "$OTHER" >/dev/null 2>&1; then
    "$PY" -m pip uninstall -q -y "$OTHER"   # the two share one folder: never both
fi
step "Installing the project with $ORT"
"$PY" -m pip install -q -c constraints.txt -e ".[export,train,dev]" "$ORT"

# 5. Models. fetch also makes the int8 version of each detector (ONNX Runtime's static quantization,
#    calibrated on assets/sample_clip.mp4): about 40 s of CPU time per detector.
if [ "$MODELS" = 1 ]; then
    if [ -n "$OFFLINE" ]; then
        step "Taking the models from $OFFLINE"
        "$PY" -m core.models fetch --offline "$OFFLINE"
    else
        step "Fetching the default models"
        "$PY" -m core.models fetch
    fi
fi

step "Done"
echo "Run the app:    cd GUI && ../.venv/bin/python main.py"
echo "Run the tests:  .venv/bin/python -m pytest"
