"""Errors the device agent raises on purpose.

Every expected failure is one of these; the CLI turns them into a one-line
message and a non-zero exit status, never a traceback::

    AgentError
    ├── ConfigError            bad or missing room configuration / CLI flag
    ├── CaptureError           audio input failed
    │   ├── NoAudioDeviceError     no (matching) input device, PortAudio missing
    │   └── AudioFormatError       a WAV file that is not 16 kHz mono 16-bit
    ├── SpoolError             the on-disk spool is unusable (locked, unwritable)
    │   └── SpoolFullError         spool_max_mb reached: new audio is refused
    ├── EnrolmentError         the server refused the code, or was unreachable
    └── ControlError           the local control socket could not be reached

A connection that ends (refused token, network down, missing pong...) is not
an error of the agent: the uplink logs why and reconnects with back-off
(``device.uplink.SessionEnded`` carries the reason).
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "AudioFormatError",
    "CaptureError",
    "ConfigError",
    "ControlError",
    "EnrolmentError",
    "NoAudioDeviceError",
    "SpoolError",
    "SpoolFullError",
]


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """The room configuration or a command-line flag is invalid."""


class CaptureError(AgentError):
    """Audio could not be captured."""


class NoAudioDeviceError(CaptureError):
    """No usable audio input device (or PortAudio itself is unavailable)."""


class AudioFormatError(CaptureError):
    """Audio in a format the protocol does not carry (16 kHz mono s16le)."""


class SpoolError(AgentError):
    """The on-disk spool cannot be used."""


class SpoolFullError(SpoolError):
    """The spool reached its size limit; the frame was not stored."""


class EnrolmentError(AgentError):
    """Enrolment failed: unknown/used/expired code, server unreachable, bad TLS."""


class ControlError(AgentError):
    """The agent's local control socket could not be reached or answered badly."""
