# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Command-line text turned into library inputs, with errors that name the option."""

from ..exceptions import InputError

__all__ = ["given", "check_outputs", "parse_hdu", "parse_plane", "load_image_arg",
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


def check_outputs(args, *extras, kind="file"):
    """
    Refuse, before any work, outputs that exist (unless ``--overwrite``): ``--output``
    (a ``kind``, file or folder) and the optional extra outputs named by ``extras``.

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.inputs import check_outputs
    >>> check_outputs(argparse.Namespace(output="new.ecsv", regions=None, overwrite=False),
    ...               "regions")
    """
    from ..utils import check_output_path
    check_output_path(args.output, args.overwrite, kind=kind)
    for name in extras:
        path = getattr(args, name)
        if path is not None:
            check_output_path(path, args.overwrite)


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
