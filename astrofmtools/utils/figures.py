# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Save matplotlib figures as PNG files, atomically."""

from .output import atomic_output

__all__ = ["save_figure"]

#: Resolution of saved figures: a PNG is the figure size in inches times DPI pixels.
DPI = 100

__doctest_requires__ = {"save_figure": ["matplotlib"]}


def save_figure(fig, path, overwrite=False, dpi=DPI):
    """
    Save a figure to a PNG file through a temporary name (no partial file on failure).

    Parameters
    ----------
    fig : `~matplotlib.figure.Figure`
        The figure.
    path : str, `~pathlib.Path` or None
        The PNG file; None saves nothing.
    overwrite : bool, optional
        Replace an existing file.
    dpi : float, optional
        Pixels per inch of figure size.

    Raises
    ------
    astrofmtools.InputError
        If ``path`` exists and ``overwrite`` is False, or its folder does
        not exist.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from matplotlib.image import imread
    >>> from astrofmtools.utils import save_figure
    >>> save_figure(Figure(figsize=(3.2, 2.4)), "empty.png")
    >>> imread("empty.png").shape    # height, width, RGBA
    (240, 320, 4)
    """
    if path is not None:
        with atomic_output(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
