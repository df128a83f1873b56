"""The exceptions hfsize raises on purpose, each with the exit code the CLI maps it to."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in the README and stable for scripts."""

    OK = 0
    INTERNAL = 1  # a bug in hfsize: please report it
    USAGE = 2  # bad command-line usage (click's own code)
    NOT_FOUND = 3  # repo, revision, file or local path does not exist
    ACCESS = 4  # gated or private repo, missing or insufficient token
    NETWORK = 5  # connection failure, timeout, server error
    BAD_FILES = 6  # malformed config.json, invalid safetensors header or index
    UNSUPPORTED = 7  # the architecture cannot be built and there are no headers to count
    DOES_NOT_FIT = 10  # `check`: the model does not fit the chosen GPUs
    PROBLEMS = 11  # `check`: problems found in the repo


class HfsizeError(Exception):
    """Base class: `str(error)` is one sentence saying what failed, `hint` what to do next."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(HfsizeError):
    """Options that do not apply to this input (exit 2, as click's own usage errors)."""

    exit_code = ExitCode.USAGE


class NotFoundError(HfsizeError):
    exit_code = ExitCode.NOT_FOUND


class AccessError(HfsizeError):
    exit_code = ExitCode.ACCESS


class NetworkError(HfsizeError):
    exit_code = ExitCode.NETWORK


class BadFilesError(HfsizeError):
    exit_code = ExitCode.BAD_FILES


class UnsupportedError(HfsizeError):
    exit_code = ExitCode.UNSUPPORTED


def capitalized(message: str) -> str:
    """A message's first letter in upper case when it starts with a plain word; a file name or identifier
    ('config.json', 'model_type') keeps its case. The one rule for stderr's Error line and JSON error rows."""
    first = message.split(" ", 1)[0] if message else ""
    return message[0].upper() + message[1:] if first.isalpha() else message


class NeedsModelClassError(UnsupportedError):
    """The light install cannot count this model (no headers, no cached architecture): the repo is not at fault,
    the install lacks torch/transformers/accelerate (`check` reports it as a warning, not an error)."""
