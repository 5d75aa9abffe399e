# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Save matplotlib figures as PNG files, atomically."""

from .output import atomic_output

__all__ = ["save_figure", "RANDOM_WEIGHTS_NOTE", "is_random_weights", "weights_note"]

#: What every figure made with randomly initialised weights says, in its title.
RANDOM_WEIGHTS_NOTE = "random weights: not a trained model"

#: Resolution of saved figures: a PNG is the figure size in inches times DPI pixels.
DPI = 100

__doctest_requires__ = {"save_figure": ["matplotlib"]}


def is_random_weights(weights):
    """
    Whether a backbone's recorded weights (``Backbone.weights``, a table's
    ``meta['weights']``) are a random initialisation.

    Parameters
    ----------
    weights : str or None
        The recorded weights: ``'random'``, a file, a description, or None
        (unknown).

    Returns
    -------
    random : bool

    Examples
    --------
    >>> from astrofmtools.utils import is_random_weights
    >>> is_random_weights("random"), is_random_weights("model.safetensors"), is_random_weights(None)
    (True, False, False)
    """
    return weights is not None and str(weights).strip().lower() == "random"


def weights_note(title, weights, sep=" "):
    """
    A figure's title, marked ``(random weights: not a trained model)`` when
    the backbone's weights were random.

    Every figure drawn from a backbone whose weights are known goes through
    this, so that a picture of an untrained model never passes for a real
    one; a title given by the user is marked too.

    Parameters
    ----------
    title : str or None
        The title (None or empty: the note alone, for random weights).
    weights : str or None
        The backbone's recorded weights (see `is_random_weights`).
    sep : str, optional
        Between the title and the note (``"\\n"``: on a line of its own).

    Returns
    -------
    title : str or None
        ``title`` unchanged for trained or unknown weights.

    Examples
    --------
    >>> from astrofmtools.utils import weights_note
    >>> weights_note("CLS attention, dinov2_vits14", "random")
    'CLS attention, dinov2_vits14 (random weights: not a trained model)'
    >>> weights_note("CLS attention, dinov2_vits14", "/data/dinov2.safetensors")
    'CLS attention, dinov2_vits14'
    """
    if not is_random_weights(weights):
        return title
    if not title:
        return f"({RANDOM_WEIGHTS_NOTE})"
    if RANDOM_WEIGHTS_NOTE in title:
        return title
    return f"{title}{sep}({RANDOM_WEIGHTS_NOTE})"


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
