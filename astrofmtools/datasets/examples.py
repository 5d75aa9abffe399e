# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Example data that ship with the package."""

from importlib.resources import files

__all__ = ["example_image_path"]


def example_image_path():
    """
    Path of the FITS image that ships with astrofmtools.

    A 300x300 VLA FIRST 1.4 GHz image (Jy/beam, 1.8"/pixel, 5.4" beam) of
    a hybrid FRI/FRII radio galaxy from the MiraBest sample, as NASA
    SkyView wrote it (tab characters in its COMMENT cards included). Its
    terms are in ``licenses/FIRST_LICENSE.rst``.

    Returns
    -------
    path : str
        The file's path inside the installed package.

    Examples
    --------
    >>> from astrofmtools.datasets import example_image_path
    >>> example_image_path().endswith("first_example.fits")
    True
    """
    return str(files("astrofmtools") / "data" / "first_example.fits")
