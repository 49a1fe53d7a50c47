"""Exceptions a user can act on; the command line (:func:`refsmith.cli.commands.main`)
catches them once and prints the message."""


class RefsmithError(Exception):
    """Base of every error meant for the user (no traceback is shown)."""


class ConfigError(RefsmithError):
    """The configuration file (or a command-line option that overrides it) is invalid."""


class PlanError(RefsmithError):
    """The plan cannot be built (e.g. an unresolvable reference file)."""
