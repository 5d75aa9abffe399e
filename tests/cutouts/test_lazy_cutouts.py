"""Cutouts from a mosaic read on demand: the same stack as from memory, tile by tile."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable

from astrofmtools.cutouts import make_cutouts
from astrofmtools.datasets import make_wcs
from astrofmtools.io import FitsPixels, load_image


@pytest.fixture
def mosaic(tmp_path):
    rng = np.random.default_rng(4)
    data = rng.normal(size=(2600, 2300)).astype(np.float32)
    data[100:140, 2000:2050] = np.nan  # a hole without data
    path = tmp_path / "mosaic.fits"
    fits.PrimaryHDU(data.astype(">f4"), header=make_wcs(data.shape).to_header()).writeto(path)
    x = np.concatenate([rng.uniform(-20, 2320, 300), [2025.0, 5000.0, 1150.0]])
    y = np.concatenate([rng.uniform(-20, 2620, 300), [120.0, 5000.0, 1300.0]])
    return path, data, QTable({"x": x, "y": y})


@pytest.mark.parametrize("scheduler", [None, "threads"])
def test_lazy_cutouts_equal_cutouts_from_memory(mosaic, scheduler):
    path, data, table = mosaic
    lazy = load_image(path, memmap=True)
    assert isinstance(lazy.data, FitsPixels)
    expected = make_cutouts(load_image(path, memmap=False), table, size=33)
    got = make_cutouts(lazy, table, size=33, scheduler=scheduler, workers=2)
    np.testing.assert_array_equal(got.data, expected.data)  # NaN in the same places
    assert got.table["edge"].tolist() == expected.table["edge"].tolist()
    assert got.table["edge"][-3] and got.table["edge"][-2] and not got.table["edge"][-1]
    assert np.isnan(got.data[-2]).all()  # wholly off the image: all fill
    # a cutout inside the image is its pixels, wherever tiles were cut
    x0, y0 = int(got.table["cutout_x0"][-1]), int(got.table["cutout_y0"][-1])
    np.testing.assert_array_equal(got.data[-1], data[y0:y0 + 33, x0:x0 + 33])


def test_lazy_bbox_crops_equal_crops_from_memory(mosaic):
    path, _, table = mosaic
    boxes = table[:20].copy()
    boxes["bbox_xmin"] = np.floor(boxes["x"]).astype(int) - 3
    boxes["bbox_xmax"] = boxes["bbox_xmin"] + 8
    boxes["bbox_ymin"] = np.floor(boxes["y"]).astype(int) - 2
    boxes["bbox_ymax"] = boxes["bbox_ymin"] + 5
    expected = make_cutouts(load_image(path, memmap=False), boxes, size="bbox", output_size=16)
    got = make_cutouts(load_image(path, memmap=True), boxes, size="bbox", output_size=16)
    np.testing.assert_array_equal(got.data, expected.data)
