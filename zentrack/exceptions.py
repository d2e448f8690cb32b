"""The errors zentrack raises on purpose.

Each subclasses the builtin a caller would already catch for that kind of
mistake, so ``except TypeError`` keeps working around a tracked call.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "LockBusy",
    "ParameterTypeError",
    "StoreError",
    "UnhashableInputError",
    "ZentrackError",
]


class ZentrackError(Exception):
    """Base class of every error zentrack raises on purpose."""


class ParameterTypeError(ZentrackError, TypeError):
    """A step parameter holds a value zentrack cannot track exactly."""


class UnhashableInputError(ZentrackError, TypeError):
    """A step input cannot be fingerprinted by content."""


class StoreError(ZentrackError, RuntimeError):
    """The MLMD store cannot be opened, read or written."""


class LockBusy(StoreError):
    """Another process held the store's writer lock for the whole wait (records stay queued)."""


class ConfigError(ZentrackError, ValueError):
    """A YAML config is malformed or does not match its pipeline."""
