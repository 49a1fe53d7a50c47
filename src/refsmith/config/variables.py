"""Environment variables in config paths: ``$NAME`` and ``${NAME}``, unset ones an error.

Used by :meth:`refsmith.config.config.Config.resolve` and by the legacy translator
(:mod:`refsmith.config.legacy`), which expands every value of a ``mkrefs.cfg``.
"""

from __future__ import annotations

import os
import re

from refsmith.errors import ConfigError

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand_variables(text: str, where: str = "") -> str:
    """Replace ``$NAME`` and ``${NAME}`` by environment variables; unset ones are errors.

    Parameters
    ----------
    text : str
        The string to expand.
    where : str
        Where the string comes from, for the error message.

    Raises
    ------
    ConfigError
        Naming the first variable that is not set.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise ConfigError(f"{where + ': ' if where else ''}environment variable ${name} "
                              f"is not set; set it or write the path out")
        return os.environ[name]

    return _VARIABLE.sub(value, text)


