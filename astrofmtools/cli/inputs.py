# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Command-line text turned into library inputs, with errors that name the option."""

from pathlib import Path

from ..exceptions import InputError

__all__ = ["given", "check_outputs", "output_format", "OUTPUT_SUFFIXES", "parse_hdu",
           "parse_plane", "load_image_arg",
           "read_stack", "parse_rows"]


def given(**options):
    """
    The options given on the command line (not None), so the library keeps its own defaults.

    Examples
    --------
    >>> from astrofmtools.cli.inputs import given
    >>> given(batch_size=None, lr=0.01)
    {'lr': 0.01}
    """
    return {k: v for k, v in options.items() if v is not None}


#: What each kind of output file may be called: kind -> {suffix: format}. Tables and FITS
#: files take the suffixes of `astrofmtools.catalog.TABLE_FORMATS` (read when needed);
#: figures are PNG, the only format `astrofmtools.utils.save_figure` writes.
OUTPUT_SUFFIXES = {
    "regions": {".reg": "ds9", ".ds9": "ds9", ".crtf": "crtf"},
    "png": {".png": "png"},
}

_WHAT = {"table": "table", "regions": "region file", "fits": "FITS file", "png": "PNG figure"}


def _flag(name):
    return "-o/--output" if name == "output" else "--" + name.replace("_", "-")


def output_format(path, kind, option="-o/--output", format=None):
    """
    The format of an output file of a ``kind``, from its extension (or an explicit ``format``).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The output.
    kind : {'table', 'regions', 'fits', 'png', 'file', 'folder'}
        What it is: a table (any format of `~astrofmtools.catalog.TABLE_FORMATS`),
        a region file (``.reg``, ``.ds9``: DS9; ``.crtf``: CASA), a FITS file,
        a PNG figure; or any file or folder (not checked).
    option : str, optional
        The option that names it, for the message.
    format : str, optional
        For a table: the format given with ``--format`` (then any extension goes).

    Returns
    -------
    format : str or None
        ``'ecsv'``, ``'fits'``, ``'votable'``, ``'csv'`` or ``'hats'`` for a table,
        ``'ds9'`` or ``'crtf'`` for regions, ``'fits'``, ``'png'``; None for a file or
        folder of any name.

    Raises
    ------
    astrofmtools.InputError
        For an extension the kind does not know (the message lists those it does).

    Examples
    --------
    >>> from astrofmtools.cli.inputs import output_format
    >>> output_format("sources.crtf", "regions"), output_format("s.vot", "table")
    ('crtf', 'votable')
    >>> output_format("map.txt", "png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: -o/--output 'map.txt': not a PNG figure name; ...
    """
    if kind in ("file", "folder"):
        return None
    name = Path(path).name.lower()
    if kind in ("table", "fits"):
        from ..catalog import TABLE_FORMATS, table_format
        if kind == "table" and format is not None:
            return table_format(path, format)
        suffixes = {ext: key for key, (_, exts) in TABLE_FORMATS.items() for ext in exts
                    if kind == "table" or key == "fits"}
    elif kind in OUTPUT_SUFFIXES:
        suffixes = OUTPUT_SUFFIXES[kind]
    else:
        raise ValueError(f"Unknown output kind {kind!r}; known: table, fits, "
                         f"{', '.join(OUTPUT_SUFFIXES)}, file, folder.")
    # the longest suffix first: 'x.fits.gz' is FITS, not a gzip file
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffixes[suffix]
    known = ", ".join(suffixes)
    raise InputError(f"{option} {str(path)!r}: not a {_WHAT[kind]} name; use a name ending in "
                     f"{known}.")


def check_outputs(args, *extras, kind="file", **kinds):
    """
    Check every output of a subcommand before any work: all of them can be written, or none.

    Each output must have a name its kind knows (`output_format`), a folder
    that exists, and not exist already unless ``--overwrite``; no two
    options may name the same file.

    Parameters
    ----------
    args : `argparse.Namespace`
        The parsed arguments, with ``output`` and ``overwrite`` (and ``format``
        when the subcommand has ``--format``: it names the format of ``--output``).
    *extras : str
        Other output options (attribute names of ``args``), of any file name.
    kind : str, optional
        The kind of ``--output``: ``'table'``, ``'regions'``, ``'fits'``,
        ``'png'``, ``'folder'`` or ``'file'`` (any name).
    **kinds : str
        Other output options and their kind, e.g. ``regions="regions"``; those
        set to None on the command line are skipped.

    Returns
    -------
    formats : dict
        The format (`output_format`) of each output given, by option name.

    Raises
    ------
    astrofmtools.InputError
        For an output of a name its kind does not know, in a folder that does not
        exist, that exists (without ``--overwrite``), or named twice.

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.inputs import check_outputs
    >>> args = argparse.Namespace(output="new.ecsv", regions="new.crtf", overwrite=False)
    >>> check_outputs(args, kind="table", regions="regions")
    {'output': 'ecsv', 'regions': 'crtf'}
    """
    from ..utils import check_output_path
    wanted = [("output", kind)] + [(name, "file") for name in extras] + list(kinds.items())
    formats, seen = {}, {}
    for name, what in wanted:
        path = getattr(args, name, None)
        if path is None:
            continue
        fmt = getattr(args, "format", None) if name == "output" else None
        formats[name] = output_format(path, what, _flag(name), fmt)
        check_output_path(path, args.overwrite, kind="folder" if what == "folder" else "file")
        key = Path(path).resolve()
        if key in seen:
            raise InputError(f"{_flag(seen[key])} and {_flag(name)} name the same output "
                             f"{str(path)!r}; give each its own.")
        seen[key] = name
    return formats


def parse_hdu(text):
    """
    ``--hdu``: an index or an EXTNAME.

    Examples
    --------
    >>> from astrofmtools.cli.inputs import parse_hdu
    >>> parse_hdu("1"), parse_hdu("SCI"), parse_hdu(None)
    (1, 'SCI', None)
    """
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def parse_plane(text):
    """
    ``--plane``: one 0-based index, or a tuple of them for several axes.

    Examples
    --------
    >>> from astrofmtools.cli.inputs import parse_plane
    >>> parse_plane("2"), parse_plane("0,3")
    (2, (0, 3))
    """
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--plane must be integers separated by commas, not {text!r}.") from None
    return values[0] if len(values) == 1 else values


def load_image_arg(args):
    """The image of a subcommand with `~astrofmtools.cli.options.add_image_options`."""
    from ..io import load_image
    return load_image(args.image, hdu=parse_hdu(args.hdu), plane=parse_plane(args.plane))


def read_stack(path):
    """A cutout stack written by ``astrofm cutouts``."""
    from ..cutouts import CutoutStack
    return CutoutStack.read(path)


def parse_rows(text, n):
    """
    ``--rows``: 0-based rows from ``start:stop`` or ``1,4,7``, checked against ``n``.

    Examples
    --------
    >>> from astrofmtools.cli.inputs import parse_rows
    >>> parse_rows("0:3", 10), parse_rows("1,4", 10), parse_rows("-2:", 10)
    ([0, 1, 2], [1, 4], [8, 9])
    """
    try:
        if ":" in text:
            parts = [int(p) if p.strip() else None for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            rows = list(range(n))[slice(*parts)]
        else:
            rows = [int(p) for p in text.split(",")]
    except ValueError:
        raise InputError(f"--rows must be start:stop or comma-separated integers, not "
                         f"{text!r}.") from None
    bad = [r for r in rows if not -n <= r < n]
    if bad or not rows:
        raise InputError(f"--rows {text!r} selects {'rows ' + str(bad) if bad else 'nothing'} "
                         f"of {n} cutouts.")
    return rows
