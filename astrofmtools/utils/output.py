# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Write outputs atomically and never overwrite silently."""

import contextlib
import os
import tempfile
from pathlib import Path

from ..exceptions import InputError

__all__ = ["check_output_path", "atomic_output"]


def check_output_path(path, overwrite=False, kind="file"):
    """
    Refuse an output path that exists, unless ``overwrite`` is set.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The output file.
    overwrite : bool, optional
        Allow replacing an existing file.
    kind : str, optional
        What the path is, for messages (``"file"`` or ``"folder"``).

    Returns
    -------
    path : `~pathlib.Path`
        The path, as a `~pathlib.Path`.

    Raises
    ------
    astrofmtools.InputError
        If the file exists and ``overwrite`` is False, or its folder does
        not exist.

    Examples
    --------
    >>> from astrofmtools.utils import check_output_path
    >>> check_output_path("new_catalogue.ecsv").name
    'new_catalogue.ecsv'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"Output {kind} {str(path)!r} exists; use overwrite=True "
                         "(--overwrite on the command line) to replace it.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"Cannot write {str(path)!r}: folder {str(parent)!r} does not exist.")
    return path


@contextlib.contextmanager
def atomic_output(path, overwrite=False):
    """
    Write a file through a temporary name, renamed into place on success.

    An interrupted or failed write leaves no partial file at ``path``
    (and an existing file there untouched).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The final output file.
    overwrite : bool, optional
        Allow replacing an existing file.

    Yields
    ------
    tmp : str
        The temporary path to write to. It keeps the final file's suffix
        so that format guessing by extension still works.

    Examples
    --------
    >>> from astrofmtools.utils import atomic_output
    >>> with atomic_output("hello.txt", overwrite=True) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("hello")
    >>> from pathlib import Path
    >>> Path("hello.txt").read_text()
    'hello'
    """
    path = check_output_path(path, overwrite=overwrite)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix,
                               dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    os.unlink(tmp)  # writers such as astropy refuse an existing file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
