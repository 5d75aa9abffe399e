# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Exceptions raised for bad user input.

Every error caused by what the user passed (a file, an HDU, a column, an
option) is an `InputError`, whose message names the offending file, HDU or
column. The command line turns it into a one-line message and exit code 2.
"""

__all__ = ["InputError", "MissingFileError", "WriteError"]


class InputError(ValueError):
    """Bad input: the message names the file, HDU or column at fault."""


class MissingFileError(InputError, FileNotFoundError):
    """An input file does not exist."""


class WriteError(InputError, OSError):
    """An output could not be written (disk full, read-only, permission): names the output."""
