# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Labelled synthetic radio cutouts: a training set that needs no download."""

import astropy.units as u
import numpy as np

from ..exceptions import InputError
from .radio import make_radio_field

__all__ = ["make_radio_cutouts"]

_CLASSES = {"compact": ("compact",), "FRI": ("FRI",), "FRII": ("FRII",),
            "extended": ("FRI", "FRII")}


def make_radio_cutouts(n_per_class=60, classes=("compact", "extended"), size=64,
                       snr_range=(5, 200), pixel_scale=1.8 * u.arcsec, beam_fwhm=5.4 * u.arcsec,
                       seed=0, noise=1.5e-4):
    """
    Cutouts of synthetic radio sources, labelled by morphology.

    The sources come from `make_radio_field` (FIRST-like by default: 1.8"
    pixels, 5.4" beam, beam-correlated noise), cut out at their truth
    positions; artefacts are left out. Every cutout shows its source
    whole, on real-looking noise, with its neighbours where the field puts
    them.

    Parameters
    ----------
    n_per_class : int, optional
        Cutouts of each class.
    classes : tuple of str, optional
        Among ``'compact'``, ``'FRI'``, ``'FRII'`` and ``'extended'``
        (FRI and FRII together).
    size : int, optional
        Cutout side in pixels.
    snr_range : tuple of float, optional
        Peak signal-to-noise range of the compact sources (see
        `make_radio_field`).
    pixel_scale, beam_fwhm : `~astropy.units.Quantity`, optional
        As in `make_radio_field`. To train for a real image, give its own
        (its WCS's pixel scale, its header's beam).
    seed : int, optional
        The same seed gives the same cutouts.
    noise : float or `~astropy.units.Quantity`, optional
        Noise rms per pixel in Jy/beam, as in `make_radio_field` (a real
        image's: `~astrofmtools.background.global_noise`).

    Returns
    -------
    cutouts : `~astrofmtools.cutouts.CutoutStack`
        ``len(classes) * n_per_class`` cutouts, their truth rows (``kind``,
        ``snr``, ``size``...) and a ``class`` column, in class order.

    Examples
    --------
    >>> from astrofmtools.datasets import make_radio_cutouts
    >>> stack = make_radio_cutouts(n_per_class=5, size=32)
    >>> stack.shape
    (10, 32, 32)
    >>> stack.table["class"].tolist()[4:6]
    ['compact', 'extended']
    """
    from ..cutouts import CutoutStack, make_cutouts
    unknown = [c for c in classes if c not in _CLASSES]
    if unknown or not classes:
        raise InputError(f"Unknown classes {unknown}; choose among {', '.join(_CLASSES)}.")
    n_per_class = int(n_per_class)
    if n_per_class < 1:
        raise InputError(f"n_per_class must be at least 1, not {n_per_class}.")
    kinds = {k for c in classes for k in _CLASSES[c]}
    # one field holds a fixed number of sources; make fields until every class is full
    wanted = {c: n_per_class for c in classes}
    picked = {c: [] for c in classes}
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n_ext = 30 if kinds & {"FRI", "FRII"} else 0
        n_cmp = 60 if "compact" in kinds else 0
        image, truth = make_radio_field((1024, 1024), n_compact=n_cmp, n_extended=n_ext,
                                        n_artefacts=0, snr_range=snr_range,
                                        pixel_scale=pixel_scale, beam_fwhm=beam_fwhm,
                                        noise=noise, seed=int(rng.integers(2**31)))
        stack = make_cutouts(image, truth, size=size)
        for c in classes:
            rows = np.flatnonzero(np.isin(np.asarray(truth["kind"]), _CLASSES[c]))
            need = wanted[c] - sum(len(s) for s in picked[c])
            if need > 0 and len(rows):
                part = stack[rows[:need]]
                part.table["class"] = c
                picked[c].append(part)
        if all(sum(len(s) for s in picked[c]) >= wanted[c] for c in classes):
            break
    out = CutoutStack.concatenate([s for c in classes for s in picked[c]])
    out.table["class"].info.description = "Morphology class of the source (the label)"
    out.table.meta = {"classes": list(classes), "seed": seed}
    return out
