"""Errors that reach the user as one readable message (the CLI prints them without a stack trace)."""


class ConfigError(ValueError):
    """A configuration value is wrong. The message names the config key (or file and line) and the fix."""


class DataError(ValueError):
    """Input data is missing or malformed. The message names the file and what was expected."""


class StorageError(ConfigError):
    """A file could not be written where the run store or a checkpoint lives (disk full, read-only folder).
    The message names the path and the fix; a ConfigError, so the CLI prints it without a stack trace."""
