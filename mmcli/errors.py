"""The one error type of mmcli and the exit codes it maps to.

Library code raises these; only the CLI entry point (``mmcli.cli.app``) turns them into
a one-line message, a hint and an exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (documented in the README's exit-code table)."""

    OK = 0
    INPUT_FAILED = 1  # some inputs failed; each failure is recorded, the rest processed
    USAGE = 2  # bad options, bad configuration, capability not available
    MODEL_UNAVAILABLE = 3  # not downloaded while offline, download failed, bad checksum, no engine
    LOCKED = 75  # another run holds the lock (EX_TEMPFAIL)
    INTERRUPTED = 130  # SIGINT
    BROKEN_PIPE = 141  # stdout's reader went away (`| head`), as if killed by SIGPIPE
    TERMINATED = 143  # SIGTERM


class MmcliError(Exception):
    """Base error: a message for the user, a hint with the next step, and an exit code."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def type_name(self) -> str:
        """Short name used in JSON error records (``error.type``)."""
        return type(self).__name__


class UsageError(MmcliError):
    """The command line is wrong (exit 2)."""

    exit_code = ExitCode.USAGE


class ConfigError(MmcliError):
    """A manifest or setting is invalid (exit 2)."""

    exit_code = ExitCode.USAGE


class NotAvailableError(MmcliError):
    """A capability that mmcli does not provide (yet) was asked for (exit 2)."""

    exit_code = ExitCode.USAGE


class ModelUnavailableError(MmcliError):
    """The model cannot be used: offline and not downloaded, bad download or checksum (exit 3)."""

    exit_code = ExitCode.MODEL_UNAVAILABLE


class EngineMissingError(ModelUnavailableError):
    """The Python package of an engine is not installed (exit 3)."""


class InputError(MmcliError):
    """One input cannot be processed; in a batch it becomes an error record (exit 1)."""

    exit_code = ExitCode.INPUT_FAILED


class OutputError(MmcliError):
    """An output cannot be written (disk full, read-only folder): the batch stops (exit 1)."""

    exit_code = ExitCode.INPUT_FAILED


class LockedError(MmcliError):
    """Another mmcli run holds the job lock (exit 75)."""

    exit_code = ExitCode.LOCKED
