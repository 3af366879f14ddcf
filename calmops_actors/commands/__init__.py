"""One module per CLI command; each exposes `register(subparsers)` and sets `func` on its parser.

A command is listed in `calmops_actors.cli.COMMANDS` only once it works end to end.
"""
