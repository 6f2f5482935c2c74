"""Every error the NLP stage raises, in one tree.

    NlpError
    ├── InputError            a dialogue or transcript file that cannot be read
    ├── DataError             a training/evaluation corpus missing or malformed
    └── ModelError            models missing, incomplete or from another recipe
        └── ModelsMissing     ``models/`` has no built NLP models: run ``roomscribe models build``
"""

from __future__ import annotations

__all__ = ["DataError", "InputError", "ModelError", "ModelsMissing", "NlpError"]


class NlpError(Exception):
    """Base of every error raised by ``nlp``."""


class InputError(NlpError):
    """The dialogue or transcript given to the drafter is empty or malformed."""


class DataError(NlpError):
    """A corpus under the data directory is missing or not in the expected format."""


class ModelError(NlpError):
    """A model directory is incomplete or does not match what the code expects."""


class ModelsMissing(ModelError):
    """No built NLP models where they were looked for."""
