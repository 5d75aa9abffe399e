# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""FITS files named on the command line or in a script: files, folders and globs."""

import glob
import os
from pathlib import Path

from ..exceptions import InputError, MissingFileError

__all__ = ["FITS_SUFFIXES", "fits_files", "named_files"]

#: File name endings read as FITS images (compressed ones too).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz")


def fits_files(paths):
    """
    The FITS files that paths name: a folder gives its FITS files, a glob
    pattern its matches (both sorted), a file itself.

    Parameters
    ----------
    paths : str, `~pathlib.Path` or list of them
        Files, folders or glob patterns (``"tiles/*.fits"``). Items of a list
        that are not paths (in-memory images) pass through unchanged.

    Returns
    -------
    files : list
        `~pathlib.Path` of each file, in order.

    Raises
    ------
    MissingFileError
        A file that does not exist.
    InputError
        A folder without FITS files, or a pattern that matches nothing.

    Examples
    --------
    >>> import os
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.io import fits_files
    >>> [p.name for p in fits_files(os.path.dirname(example_image_path()))]
    ['first_example.fits']
    >>> fits_files("no_such_folder/*.fits")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: No file matches 'no_such_folder/*.fits'.
    """
    return named_files(paths, FITS_SUFFIXES, "FITS")


def named_files(paths, suffixes, kind):
    """
    The files of one kind that paths name: a folder gives its files with one of
    ``suffixes``, a glob pattern its matches (both sorted), a file itself.

    Parameters
    ----------
    paths : str, `~pathlib.Path` or list of them
        Files, folders or glob patterns. Items of a list that are not paths
        (in-memory images) pass through unchanged.
    suffixes : tuple of str
        The file name endings (lower case) a folder's files must have.
    kind : str
        What the files are, for messages ("FITS", "picture").

    Returns
    -------
    files : list
        `~pathlib.Path` of each file, in order.

    Raises
    ------
    MissingFileError
        A file that does not exist.
    InputError
        A folder without such files, or a pattern that matches nothing.

    Examples
    --------
    >>> from astrofmtools.io import named_files
    >>> named_files("no_such_folder/*.png", (".png",), "picture")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: No file matches 'no_such_folder/*.png'.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            files.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.name.lower().endswith(suffixes))
            if not found:
                raise InputError(f"Folder {str(path)!r} holds no {kind} file "
                                 f"({', '.join(suffixes)}).")
            files += found
        elif path.is_file():
            files.append(path)
        elif any(ch in str(item) for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(str(item)))
            if not found:
                raise InputError(f"No file matches {str(item)!r}.")
            files += found
        else:
            raise MissingFileError(f"File not found: {str(item)!r}.")
    return files
