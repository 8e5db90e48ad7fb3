"""Exceptions the package raises for bad input.

Every message names the file, line or record at fault and what was expected; the CLI prints the
message alone (no traceback) and exits with status 2.
"""


class ArfaceError(Exception):
    """Base class for errors caused by user input (files, flags, configs)."""


class FormatError(ArfaceError):
    """A file does not follow its format (names the file and line/record)."""


class MissingDataError(ArfaceError):
    """Something a protocol needs is absent (a path in a feature store, an image on disk)."""


class ConfigError(ArfaceError):
    """A config value or command-line flag is invalid."""
