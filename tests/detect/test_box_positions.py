# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Training boxes from position tables go through the one position parser: Galactic l/b,
ICRS ra/dec and pixels give the same boxes."""

import numpy as np
import pytest
import astropy.units as u
from astropy.table import QTable

pytest.importorskip("torch")

from astrofmtools.datasets import make_radio_field  # noqa: E402
from astrofmtools.detect import boxes_for_image  # noqa: E402


def test_sky_positions_in_any_frame_and_pixels_give_the_same_boxes():
    image, truth = make_radio_field((128, 128), n_compact=5, n_extended=0, n_artefacts=0,
                                    seed=4)
    x, y = np.array([20.0, 64.0, 100.5]), np.array([30.0, 70.0, 12.0])
    sky = image.wcs.pixel_to_world(x, y)
    size = 6 * image.pixel_scale
    pixels = QTable({"x": x, "y": y, "width": [6.0] * 3 * u.pix, "height": [6.0] * 3 * u.pix})
    icrs = QTable({"ra": sky.icrs.ra, "dec": sky.icrs.dec, "size": [size.to_value(u.arcsec)] * 3
                   * u.arcsec})
    galactic = QTable({"l": sky.galactic.l, "b": sky.galactic.b,
                       "size": [size.to_value(u.arcsec)] * 3 * u.arcsec})
    expected, _ = boxes_for_image(image, pixels)
    assert np.allclose(expected[:, 0], x + 0.5 - 3) and np.allclose(expected[:, 3], y + 0.5 + 3)
    for table in (icrs, galactic):
        boxes, _ = boxes_for_image(image, table)
        assert np.allclose(boxes, expected, atol=1e-4)
