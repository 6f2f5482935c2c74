#!/usr/bin/env bash
# Provision a Raspberry Pi (Raspberry Pi OS / Debian) as a RoomScribe exam-room device.
# Run as root. Idempotent: run it again to upgrade the agent.
set -euo pipefail

readonly CONFIG_DIR=/etc/roomscribe
readonly ROOM_CONFIG=$CONFIG_DIR/room.toml
readonly TOKEN_FILE=$CONFIG_DIR/device.token
readonly CA_DEST=$CONFIG_DIR/clinic-ca.pem
readonly RELEASE_KEY_DEST=$CONFIG_DIR/release-key.pem
readonly SPOOL_DIR=/var/lib/roomscribe/spool
readonly CONTROL_SOCKET=/run/roomscribe/control.sock
readonly UNIT_NAME=roomscribe-device.service
readonly UNIT_DEST=/etc/systemd/system/$UNIT_NAME
readonly SERVICE_USER=roomscribe

usage() {
    cat <<'USAGE'
Usage: provision.sh --server https://HOST[:PORT] --code CODE --package SPEC [options]

Installs the RoomScribe device agent on this Raspberry Pi (Debian) and enrols it:
  1. apt-get install portaudio19-dev python3-venv python3-dev gcc  (PyAudio builds here)
  2. a system user 'roomscribe' in group 'audio'
  3. a virtualenv in PREFIX/venv with only the device extra: roomscribe[device]
  4. roomscribe-device enroll: the one-time CODE becomes this device's own token
     (/etc/roomscribe/device.token, 0600) and /etc/roomscribe/room.toml is written
  5. the roomscribe-device systemd unit, enabled and (re)started

Required:
  --server URL         the RoomScribe server, https://host[:port]
  --code CODE          one-time enrolment code (roomscribe admin device add);
                       not needed when the device is already enrolled
  --package SPEC       what to install: a source directory, a wheel / sdist, or a URL

Options:
  --ca-bundle FILE     PEM of the clinic CA that signed the server's certificate
  --input-device NAME  microphone: index or name substring (roomscribe-device devices)
  --release-key FILE   IT's agent release public key (PEM): the agent then updates itself
                       in its maintenance window (docs/agent-updates.md)
  --prefix DIR         install directory (default /opt/roomscribe)
  --force-enrol        enrol again even though this device already has a token
  --dry-run            print the steps instead of running them
  -h, --help           this text
USAGE
}

die() {
    echo "provision.sh: $*" >&2
    exit 2
}

SERVER="" CODE="" PACKAGE="" CA_BUNDLE="" INPUT_DEVICE="" PREFIX=/opt/roomscribe RELEASE_KEY=""
FORCE_ENROL=0 DRY_RUN=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --server) SERVER=${2:?--server needs a value}; shift 2 ;;
        --code) CODE=${2:?--code needs a value}; shift 2 ;;
        --package) PACKAGE=${2:?--package needs a value}; shift 2 ;;
        --ca-bundle) CA_BUNDLE=${2:?--ca-bundle needs a value}; shift 2 ;;
        --input-device) INPUT_DEVICE=${2:?--input-device needs a value}; shift 2 ;;
        --release-key) RELEASE_KEY=${2:?--release-key needs a value}; shift 2 ;;
        --prefix) PREFIX=${2:?--prefix needs a value}; shift 2 ;;
        --force-enrol) FORCE_ENROL=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ -n $SERVER ]] || { usage >&2; die "--server is required"; }
[[ -n $PACKAGE ]] || { usage >&2; die "--package is required"; }
[[ $SERVER == https://* ]] || die "--server must be https://host[:port] (got $SERVER)"
[[ $PREFIX == /* ]] || die "--prefix must be an absolute path"
if [[ -n $CA_BUNDLE && $DRY_RUN -eq 0 && ! -r $CA_BUNDLE ]]; then
    die "cannot read --ca-bundle $CA_BUNDLE"
fi

readonly VENV=$PREFIX/venv
readonly AGENT=$VENV/bin/roomscribe-device
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE

# Run a command, or print it with --dry-run.
run() {
    if [[ $DRY_RUN -eq 1 ]]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

step() {
    echo "==> $*"
}

already_enrolled() {
    [[ -s $TOKEN_FILE && -s $ROOM_CONFIG ]]
}

# pip's "name @ url" needs a URL: turn a local path into file://...
package_requirement() {
    local spec=$1
    if [[ $spec =~ ^[a-z+]+:// ]]; then
        printf 'roomscribe[device] @ %s' "$spec"
    else
        [[ $DRY_RUN -eq 1 || -e $spec ]] || die "--package $spec does not exist"
        printf 'roomscribe[device] @ file://%s' "$(realpath -m "$spec")"
    fi
}

if [[ $DRY_RUN -eq 0 ]]; then
    [[ $(id -u) -eq 0 ]] || die "run as root (sudo $0 ...)"
    command -v apt-get >/dev/null || die "this script is for Debian / Raspberry Pi OS (no apt-get)"
fi
if [[ -z $CODE ]] && { [[ $FORCE_ENROL -eq 1 ]] || ! already_enrolled; }; then
    die "--code is required to enrol this device"
fi
REQUIREMENT=$(package_requirement "$PACKAGE")

step "system packages"
run env DEBIAN_FRONTEND=noninteractive apt-get update -q
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    portaudio19-dev python3-venv python3-dev gcc

step "service user '$SERVICE_USER'"
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    run useradd --system --no-create-home --home-dir /var/lib/roomscribe \
        --shell /usr/sbin/nologin --groups audio "$SERVICE_USER"
else
    run usermod --append --groups audio "$SERVICE_USER"
fi

step "agent in $VENV (device extra only)"
if [[ ! -x $VENV/bin/python ]]; then
    run python3 -m venv "$VENV"
fi
run "$VENV/bin/pip" install --quiet --upgrade pip
run "$VENV/bin/pip" install --quiet --upgrade "$REQUIREMENT"

step "configuration in $CONFIG_DIR"
run install -d -m 0750 -o root -g "$SERVICE_USER" "$CONFIG_DIR"
CA_ARGS=()
if [[ -n $CA_BUNDLE ]]; then
    run install -m 0644 -o root -g root "$CA_BUNDLE" "$CA_DEST"
    CA_ARGS=(--ca-bundle "$CA_DEST")
fi
if [[ -n $RELEASE_KEY ]]; then
    run install -m 0644 -o root -g root "$RELEASE_KEY" "$RELEASE_KEY_DEST"
fi

if [[ $FORCE_ENROL -eq 0 ]] && already_enrolled; then
    step "already enrolled ($TOKEN_FILE exists); use --force-enrol with a new code to redo"
    if [[ -n $INPUT_DEVICE ]]; then
        echo "note: --input-device is only written when enrolling; edit input_device in $ROOM_CONFIG"
    fi
    if [[ -n $RELEASE_KEY ]]; then
        echo "note: set update_public_key = \"$RELEASE_KEY_DEST\" in $ROOM_CONFIG to turn on updates"
    fi
else
    step "enrolling with $SERVER"
    DEVICE_ARGS=()
    [[ -n $INPUT_DEVICE ]] && DEVICE_ARGS=(--input-device "$INPUT_DEVICE")
    [[ -n $RELEASE_KEY ]] && DEVICE_ARGS+=(--release-key "$RELEASE_KEY_DEST")
    run "$AGENT" enroll --server "$SERVER" --code "$CODE" \
        --room-config "$ROOM_CONFIG" --token-file "$TOKEN_FILE" \
        --spool-dir "$SPOOL_DIR" --control-socket "$CONTROL_SOCKET" \
        ${CA_ARGS[@]+"${CA_ARGS[@]}"} ${DEVICE_ARGS[@]+"${DEVICE_ARGS[@]}"}
fi
run chown "$SERVICE_USER:$SERVICE_USER" "$TOKEN_FILE"
run chmod 0600 "$TOKEN_FILE"
run chown "root:$SERVICE_USER" "$ROOM_CONFIG"
run chmod 0640 "$ROOM_CONFIG"

step "systemd unit $UNIT_NAME"
UNIT_SRC=$HERE/$UNIT_NAME
if [[ ! -r $UNIT_SRC ]]; then  # the copy shipped inside the installed package
    UNIT_SRC=$("$VENV/bin/python" -c \
        'import device, pathlib; print(pathlib.Path(device.__file__).parent / "deploy")')/$UNIT_NAME
fi
if [[ $DRY_RUN -eq 1 ]]; then
    echo "+ sed 's#/opt/roomscribe#$PREFIX#g' $UNIT_SRC > $UNIT_DEST"
else
    sed "s#/opt/roomscribe#$PREFIX#g" "$UNIT_SRC" > "$UNIT_DEST.tmp"
    mv "$UNIT_DEST.tmp" "$UNIT_DEST"
fi
run systemctl daemon-reload
run systemctl enable "$UNIT_NAME"
run systemctl restart "$UNIT_NAME"

step "done"
echo "Check:  systemctl status $UNIT_NAME; journalctl -u $UNIT_NAME -f"
echo "Mics:   sudo -u $SERVICE_USER $AGENT devices"
echo "Drive:  sudo $AGENT ctl status --config $ROOM_CONFIG"
