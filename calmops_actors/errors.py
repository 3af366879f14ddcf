"""Errors a user can cause and fix; the CLI prints their message without a traceback."""


class UserError(Exception):
    """A foreseeable mistake (bad argument, missing file, unknown pipeline); the message says what to do."""

    exit_code = 2
