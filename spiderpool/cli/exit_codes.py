"""The exit codes of ``spiderpoolctl`` (documented in ``docs/cli.md``) and the error that carries one."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    INCONSISTENT = 1  # ``check`` found problems, or ``release`` was refused
    USAGE = 2  # bad arguments or an unusable kubeconfig (argparse exits with 2 too)
    NOT_FOUND = 3  # the IP, pod or record named on the command line does not exist
    API_UNREACHABLE = 4  # the API server could not be reached or failed the request


class CliError(Exception):
    """A failure the user is told about on stderr, ending the command with ``code``."""

    def __init__(self, message: str, *, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code
