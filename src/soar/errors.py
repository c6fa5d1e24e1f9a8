"""User-facing errors.

Anything raised as :class:`SoarError` is reported by the CLI as one clear line
(naming the file, line, record or config key at fault) and a non-zero exit,
never as a traceback.
"""


class SoarError(Exception):
    """An error caused by the user's input (a file, a config value, a flag)."""


class ConfigError(SoarError):
    """A config file or override names an unknown key or has a wrong type."""


class DataError(SoarError):
    """A problem file or dataset record is malformed."""
