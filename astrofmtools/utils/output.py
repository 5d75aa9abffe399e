# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Write outputs atomically and never overwrite silently."""

import contextlib
import os
import tempfile
from pathlib import Path

from ..exceptions import InputError

__all__ = ["check_output_path", "atomic_output", "atomic_folder"]


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
    parent = path.parent  # Path(".") for a bare file name
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
                               dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as astropy refuse an existing file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_folder(path, overwrite=False):
    """
    Write a folder through a temporary one, renamed into place on success.

    An interrupted or failed write leaves no partial folder at ``path``;
    an existing folder there stays untouched until the new one is complete.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The final output folder.
    overwrite : bool, optional
        Allow replacing an existing folder.

    Yields
    ------
    tmp : `~pathlib.Path`
        The temporary folder (next to ``path``) to write into.

    Examples
    --------
    >>> from pathlib import Path
    >>> from astrofmtools.utils import atomic_folder
    >>> with atomic_folder("model_dir") as tmp:
    ...     _ = (tmp / "config.json").write_text("{}")
    >>> sorted(p.name for p in Path("model_dir").iterdir())
    ['config.json']
    """
    import shutil
    path = check_output_path(path, overwrite=overwrite, kind="folder")
    parent = path.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=parent))
            os.replace(path, old / "previous")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
