"""``roomscribe-device``: run the agent, drive it, list microphones, enrol it.

::

    roomscribe-device run [--config room.toml] [overrides] [--wav FILE [--speed N]]
                          [--start] [--exit-when-done]
    roomscribe-device ctl start|stop|mute|unmute|status [--config room.toml | --socket PATH]
    roomscribe-device ctl consent verbal|written|withdraw [--by NAME] [--config ... ]
    roomscribe-device devices
    roomscribe-device enroll --server https://host[:port] --code CODE
                             --room-config room.toml --token-file device.token
                             [--ca-bundle clinic-ca.pem] [--spool-dir DIR]
                             [--control-socket PATH] [--frame-ms N] [--input-device NAME]
                             [--spool-max-mb N]

Expected failures (bad config, unreachable control socket, refused enrolment
code...) print one line and exit non-zero: 2 for configuration errors, 1 for
the rest. SIGTERM / SIGINT stop ``run`` gracefully (spool fsynced; an open
visit stays open and is resumed by the next run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import AgentError, ConfigError

__all__ = ["build_parser", "main"]

log = logging.getLogger("device")

# flag -> (settings key, argparse type)
_OVERRIDES: dict[str, tuple[str, Any]] = {
    "--server-url": ("server_url", str),
    "--device-id": ("device_id", str),
    "--room-id": ("room_id", str),
    "--token-file": ("token_file", str),
    "--ca-bundle": ("ca_bundle", str),
    "--input-device": ("input_device", str),
    "--spool-dir": ("spool_dir", str),
    "--spool-max-mb": ("spool_max_mb", int),
    "--frame-ms": ("frame_ms", int),
    "--control-socket": ("control_socket", str),
    "--ping-interval-s": ("ping_interval_s", float),
    "--pong-timeout-s": ("pong_timeout_s", float),
    "--log-interval-s": ("log_interval_s", float),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roomscribe-device", description="RoomScribe exam-room device agent.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="capture, spool and stream the room's audio")
    run.add_argument("--config", type=Path, help="room TOML file (default /etc/roomscribe/"
                     "room.toml if it exists)")
    for flag, (key, typ) in _OVERRIDES.items():
        run.add_argument(flag, dest=key, type=typ, metavar=key.upper(),
                         help=f"override {key} from the config file")
    run.add_argument("--allow-insecure", dest="allow_insecure", action="store_const",
                     const=True, help="permit ws:// to a loopback host")
    run.add_argument("--wav", type=Path, metavar="FILE",
                     help="stream a 16 kHz mono 16-bit WAV file instead of the microphone "
                     "(one visit, start to end of the file)")
    run.add_argument("--speed", type=float, default=1.0, metavar="N",
                     help="with --wav: N times real time; 0 = as fast as possible")
    run.add_argument("--start", action="store_true", help="start a visit right away")
    run.add_argument("--exit-when-done", action="store_true",
                     help="exit 0 once the room is idle and the server has everything")
    run.add_argument("--no-control", action="store_true", help="do not open the control socket")
    run.add_argument("--log-level", default="INFO",
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    ctl = sub.add_parser("ctl", help="send a command to the running agent")
    ctl.add_argument("cmd", choices=["start", "stop", "mute", "unmute", "status", "consent"])
    ctl.add_argument("consent", nargs="?", choices=["verbal", "written", "withdraw"],
                     help="consent: the patient's consent for the visit in progress")
    ctl.add_argument("--by", default="", help="consent: who obtained it (your name)")
    where = ctl.add_mutually_exclusive_group()
    where.add_argument("--config", type=Path, help="room TOML file naming control_socket")
    where.add_argument("--socket", type=Path, help="control socket path")
    ctl.add_argument("--timeout", type=float, default=5.0, help=argparse.SUPPRESS)

    sub.add_parser("devices", help="list audio input devices (IT check)")

    enrol = sub.add_parser("enroll", help="enrol this device with a one-time code")
    enrol.add_argument("--server", required=True, help="https://host[:port] of the server")
    enrol.add_argument("--code", required=True, help="one-time enrolment code")
    enrol.add_argument("--room-config", type=Path, required=True, help="room TOML to write")
    enrol.add_argument("--token-file", type=Path, required=True, help="token file to write")
    enrol.add_argument("--ca-bundle", type=Path, help="PEM CA bundle to trust")
    enrol.add_argument("--spool-dir", type=Path, help="spool_dir to write in the config")
    enrol.add_argument("--control-socket", type=Path, help="control_socket to write")
    enrol.add_argument("--frame-ms", type=int, help="frame_ms to write")
    enrol.add_argument("--input-device", help="input_device to write")
    enrol.add_argument("--spool-max-mb", type=int, help="spool_max_mb to write")
    enrol.add_argument("--release-key", dest="update_public_key", type=Path,
                       help="IT's agent release public key (PEM): update_public_key to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "ctl":
            return _cmd_ctl(args)
        if args.command == "devices":
            return _cmd_devices()
        return _cmd_enroll(args)
    except ConfigError as err:
        print(f"roomscribe-device: config error: {err}", file=sys.stderr)
        return 2
    except AgentError as err:
        print(f"roomscribe-device: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _cmd_run(args: argparse.Namespace) -> int:
    from .settings import DEFAULT_CONFIG, load_settings
    from .wavsource import WavSource, check_wav

    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = args.config
    if config is None:
        if not DEFAULT_CONFIG.exists() and args.server_url is None:
            raise ConfigError(f"no --config given and {DEFAULT_CONFIG} does not exist; "
                              "enrol this device first (roomscribe-device enroll)")
        config = DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None
    overrides = {key: getattr(args, key) for key, _typ in _OVERRIDES.values()}
    overrides["allow_insecure"] = args.allow_insecure
    settings = load_settings(config, overrides)
    if args.speed < 0:
        raise ConfigError("--speed must be 0 (as fast as possible) or more")
    if args.wav is not None:
        check_wav(args.wav)
        source: Any = WavSource(args.wav, settings.frame_ms, args.speed)
    else:
        if args.speed != 1.0:
            raise ConfigError("--speed only applies to --wav")
        from .capture import MicrophoneSource
        source = MicrophoneSource(settings.input_device, settings.frame_ms)
    start = args.start or args.wav is not None
    log.info("roomscribe-device %s: room %r, device %s, server %s, source %s", __version__,
             settings.room_id, settings.device_id, settings.server_url, source.describe())
    return asyncio.run(_run(settings, source, start=start, exit_when_done=args.exit_when_done,
                            control=not args.no_control))


async def _run(settings: Any, source: Any, *, start: bool, exit_when_done: bool,
               control: bool) -> int:
    from .agent import Agent
    from .spool import Spool

    spool = Spool.open(settings.spool_dir, settings.spool_max_bytes)
    try:
        agent = Agent(settings, spool, source, auto_start=start, exit_when_done=exit_when_done,
                      control=control)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.request_stop)
        return await agent.run()
    finally:
        spool.close()


def _cmd_ctl(args: argparse.Namespace) -> int:
    from .control import request
    from .settings import DEFAULT_CONFIG, DEFAULT_CONTROL_SOCKET, control_socket_of

    if args.socket is not None:
        path = args.socket
    elif args.config is not None:
        path = control_socket_of(args.config)
    elif DEFAULT_CONFIG.exists():
        path = control_socket_of(DEFAULT_CONFIG)
    else:
        path = DEFAULT_CONTROL_SOCKET
    params: dict[str, str] = {}
    if args.cmd == "consent":
        if args.consent is None:
            raise ConfigError("ctl consent needs verbal, written or withdraw")
        params = {"consent": args.consent, "by": args.by}
    elif args.consent is not None:
        raise ConfigError(f"ctl {args.cmd} takes no {args.consent!r}")
    reply = request(path, args.cmd, timeout=args.timeout, **params)
    print(json.dumps(reply, indent=2))
    return 0 if reply.get("ok") else 1


def _cmd_devices() -> int:
    from .capture import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no audio input devices found")
        return 1
    for d in devices:
        flags = " (default)" if d.is_default else ""
        ok = "16 kHz mono ok" if d.supports_16k_mono else "NO 16 kHz mono"
        print(f"{d.index:3d}  {d.name}{flags}  [{d.channels} ch, {d.default_rate:g} Hz; {ok}]")
    return 0


def _cmd_enroll(args: argparse.Namespace) -> int:
    from .enroll import enroll, write_enrolment

    enrolment = enroll(args.server, args.code, ca_bundle=args.ca_bundle)
    options = {key: getattr(args, key) for key in
               ("spool_dir", "control_socket", "frame_ms", "input_device", "spool_max_mb",
                "update_public_key")}
    write_enrolment(enrolment, server=args.server, room_config=args.room_config,
                    token_file=args.token_file, ca_bundle=args.ca_bundle, options=options)
    print(f"enrolled device {enrolment.device_id} for room {enrolment.room_id!r}; "
          f"wrote {args.room_config} and {args.token_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
