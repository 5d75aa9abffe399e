"""Background maps of a mosaic in tiles: close to the whole-image maps, the same on any scheduler."""

import numpy as np
import pytest
from astropy.io import fits

from astrofmtools import InputError
from astrofmtools.background import estimate_background
from astrofmtools.datasets import make_wcs
from astrofmtools.io import FitsPixels, load_image


@pytest.fixture
def sky(tmp_path):
    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[:1100, :1300]
    data = (3.0 + 2e-3 * xx - 1e-3 * yy + rng.normal(0.0, 0.4 + 2e-4 * xx)).astype(np.float32)
    data[500:560, 600:700] = np.nan
    path = tmp_path / "sky.fits"
    fits.PrimaryHDU(data.astype(">f4"), header=make_wcs(data.shape).to_header()).writeto(path)
    return path, data, 3.0 + 2e-3 * xx - 1e-3 * yy, 0.4 + 2e-4 * xx


def test_tiled_maps_follow_the_sky_like_the_whole_image_maps(sky):
    path, data, truth_bkg, truth_rms = sky
    whole = estimate_background((data, None), box_size=32, tile_size=0)
    tiled = estimate_background(load_image(path, memmap=True), box_size=32, tile_size=400)
    assert isinstance(load_image(path, memmap=True).data, FitsPixels)
    assert tiled.meta["tile_size"] == 400 and "tile_size" not in whole.meta
    good = np.isfinite(data)
    assert np.array_equal(np.isnan(tiled.background), ~good)
    # both follow the true gradient to a small fraction of the noise
    for maps in (whole, tiled):
        assert np.nanmedian(np.abs(maps.background - truth_bkg)) < 0.02
        assert np.nanmedian(np.abs(maps.rms / truth_rms - 1)) < 0.03
    assert np.nanmax(np.abs(tiled.background - whole.background)) < 0.1


def test_tiled_maps_are_the_same_on_threads_and_dask(sky):
    path = sky[0]
    serial = estimate_background(path, box_size=32, tile_size=400)
    threads = estimate_background(path, box_size=32, tile_size=400, scheduler="threads",
                                  workers=2)
    np.testing.assert_array_equal(serial.background, threads.background)
    np.testing.assert_array_equal(serial.rms, threads.rms)
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1,
                            dashboard_address=":0") as client:
        dask = estimate_background(path, box_size=32, tile_size=400, scheduler=client)
    np.testing.assert_array_equal(serial.rms, dask.rms)


def test_bad_tile_size():
    with pytest.raises(InputError, match="tile_size"):
        estimate_background((np.ones((300, 300)), None), tile_size=-5)
