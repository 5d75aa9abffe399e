# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Cutout stacks: centring, edges, close crops, WCS, FITS round trip, files."""

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData
from astropy.table import QTable, Table
from astropy.wcs import WCS

from astrofmtools import InputError
from astrofmtools.cutouts import CutoutStack, cutouts_from_files, make_cutouts
from astrofmtools.datasets import example_image_path, make_radio_field
from astrofmtools.io import SkyImage, load_image


@pytest.fixture(scope="module")
def radio():
    return make_radio_field(shape=(512, 512), n_compact=60, n_extended=8, n_artefacts=0,
                            seed=3)


def _wcs(crval=(150.0, 2.0), shape=(100, 120), scale=1.0 / 3600):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    w.wcs.cdelt = [-scale, scale]
    w.wcs.set()
    return w


def _ramp(shape=(100, 120)):
    """An image whose pixel value encodes its position: 1000 * y + x."""
    y, x = np.indices(shape)
    return (1000.0 * y + x).astype(np.float32)


# ------------------------------------------------------------------ centring
def test_cutouts_are_centred_on_the_truth_position(radio):
    image, truth = radio
    size = 32
    inner = ((truth["x"] > size) & (truth["x"] < 512 - size) & (truth["y"] > size)
             & (truth["y"] < 512 - size))
    compact = truth[(truth["kind"] == "compact") & (truth["snr"] > 30) & inner]
    assert len(compact) >= 10
    stack = make_cutouts(image, compact, size=size)
    assert stack.data.shape == (len(compact), size, size) and stack.data.dtype == np.float32
    assert not stack.table["edge"].any()
    c = size // 2
    # the source's pixel sits at index size // 2; its sub-pixel offset is recorded
    assert np.all(np.abs(stack.table["cutout_x"] - c) <= 0.5)
    assert np.all(np.abs(stack.table["cutout_y"] - c) <= 0.5)
    assert np.allclose(stack.table["cutout_x"], compact["x"] - stack.table["cutout_x0"])
    yy, xx = np.indices((7, 7)) + c - 3
    for k, cut in enumerate(stack.data):
        box = cut[c - 3:c + 4, c - 3:c + 4]  # one beam FWHM around the centre
        # the brightest pixel is the centre pixel
        assert np.unravel_index(np.nanargmax(box), box.shape) == (3, 3)
        box = np.clip(box, 0, None)
        cx, cy = (box * xx).sum() / box.sum(), (box * yy).sum() / box.sum()
        # the centroid is the truth position, mapped into the cutout
        assert abs(cx - stack.table["cutout_x"][k]) < 0.35
        assert abs(cy - stack.table["cutout_y"][k]) < 0.35
    # the table keeps every input row and column
    assert stack.table["id"].tolist() == compact["id"].tolist()
    assert set(compact.colnames) <= set(stack.table.colnames)
    assert stack.table["x"].description  # cutout columns and input columns documented
    assert "0-based" in stack.table["cutout_x0"].description
    assert stack.table.meta["stage"] == "cutouts" and "versions" in stack.table.meta


def test_centre_convention_odd_even_and_rectangular():
    image = (_ramp(), None)
    table = QTable({"x": [50.2, 50.5, 50.7], "y": [40.0, 40.49, 40.5]})
    for size in (8, 9, (6, 11)):
        stack = make_cutouts(image, table, size=size)
        ny, nx = stack.cutout_shape
        assert (ny, nx) == ((size, size) if np.isscalar(size) else size)
        for k, (x, y) in enumerate(zip(table["x"], table["y"])):
            ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
            assert stack.data[k, ny // 2, nx // 2] == 1000 * iy + ix
            assert stack.table["cutout_x0"][k] == ix - nx // 2
            assert stack.table["cutout_x"][k] == pytest.approx(x - ix + nx // 2)
            assert stack.table["cutout_y"][k] == pytest.approx(y - iy + ny // 2)
    assert np.array_equal(stack.data[0], _ramp()[37:43, 45:56])


def test_sky_positions_give_the_same_cutouts(radio):
    image, truth = radio
    by_pixel = make_cutouts(image, truth, size=24)
    only_sky = truth["id", "sky_centroid"]
    by_sky = make_cutouts(image, only_sky, size=24)
    by_radec = make_cutouts(image, truth["id", "ra", "dec"], size=24)
    renamed = truth["id", "ra", "dec"]
    renamed.rename_columns(["ra", "dec"], ["RAJ2000", "DEJ2000"])
    by_named = make_cutouts(image, renamed, size=24, sky=("RAJ2000", "DEJ2000"))
    by_coord = make_cutouts(image, truth["sky_centroid"], size=24)
    for other in (by_sky, by_radec, by_named, by_coord):
        assert np.array_equal(other.data, by_pixel.data, equal_nan=True)
        assert np.allclose(other.table["cutout_x"], by_pixel.table["cutout_x"], atol=1e-6)
    # xy= names the pixel columns; x/y are preferred over sky columns
    moved = truth["id", "x", "y", "sky_centroid"]
    moved["px"], moved["py"] = moved["x"] + 5, moved["y"]
    shifted = make_cutouts(image, moved, size=24, xy=("px", "py"))
    assert np.array_equal(shifted.table["cutout_x0"], by_pixel.table["cutout_x0"] + 5)
    assert np.array_equal(make_cutouts(image, moved, size=24).data, by_pixel.data,
                          equal_nan=True)


def test_angular_size():
    stack = make_cutouts(example_image_path(), QTable({"x": [150.0], "y": [150.0]}),
                         size=1 * u.arcmin)
    assert stack.cutout_shape == (34, 34)  # 60" / 1.8" = 33.3 -> 34 pixels


# -------------------------------------------------------------------- edges
def test_edges_are_filled_and_flagged():
    data = _ramp()
    data[70, 60] = np.nan  # a no-data pixel inside the image
    table = QTable({"x": [2.0, 60.0, 118.6, 60.0, 500.0, 30.0],
                    "y": [50.0, 50.0, 99.0, 72.0, 50.0, 30.0]})
    stack = make_cutouts((data, None), table, size=10)
    assert stack.table["edge"].tolist() == [True, False, True, True, True, False]
    left = stack.data[0]
    assert np.isnan(left[:, :3]).all() and np.isfinite(left[:, 3:]).all()
    assert left[5, 3] == 1000 * 50 + 0
    corner = stack.data[2]  # x=119 -> pixels 114..123 of 0..119; y=99 -> rows 94..103
    assert np.isfinite(corner[:6, :6]).all() and np.isnan(corner[6:]).all()
    assert np.isnan(corner[:, 6:]).all()
    assert np.isnan(stack.data[3, 3, 5]) and np.isfinite(stack.data[3, 2, 5])
    assert np.isnan(stack.data[4]).all()  # wholly outside: all fill
    filled = make_cutouts((data, None), table, size=10, fill=0.0)
    assert filled.table["edge"].tolist() == stack.table["edge"].tolist()
    assert (filled.data[0][:, :3] == 0).all() and (filled.data[4] == 0).all()


def test_no_data_masks_and_blank_values(tmp_path):
    data = _ramp()
    mask = np.zeros(data.shape, dtype=bool)
    mask[50, 50] = True  # masked (no data) but finite
    stack = make_cutouts(NDData(data, mask=mask), QTable({"x": [50.0, 20.0],
                                                          "y": [50.0, 20.0]}), size=5)
    assert np.isnan(stack.data[0, 2, 2]) and np.isfinite(stack.data[1]).all()
    assert stack.table["edge"].tolist() == [True, False]
    # integer FITS with BLANK, opened memory-mapped from the file name
    ints = np.arange(120 * 100, dtype=np.int16).reshape(100, 120)
    ints[10, 10] = -32768
    hdu = fits.PrimaryHDU(ints)
    hdu.header["BLANK"] = -32768
    hdu.writeto(tmp_path / "ints.fits")
    stack = make_cutouts(tmp_path / "ints.fits", QTable({"x": [10.0, 60.0], "y": [10.0, 60.0]}),
                         size=5)
    assert np.isnan(stack.data[0, 2, 2]) and stack.data[1, 2, 2] == 60 * 120 + 60
    assert stack.table["edge"].tolist() == [True, False]


# ---------------------------------------------------------------------- WCS
def test_cutout_wcs_is_the_image_wcs_shifted(radio):
    image, truth = radio
    table = QTable({"x": [100.3, 3.0, 508.9], "y": [200.7, 5.0, 300.0]})
    stack = make_cutouts(image, table, size=16)
    assert stack.table["edge"].tolist() == [False, True, True]
    j, i = np.meshgrid(np.arange(16.0), np.arange(16.0))
    for k in range(3):
        w = stack.wcs_of(k)
        assert w.pixel_shape == (16, 16)
        x0, y0 = stack.table["cutout_x0"][k], stack.table["cutout_y0"][k]
        a = w.pixel_to_world(j, i)
        b = image.wcs.pixel_to_world(j + x0, i + y0)
        assert np.max(a.separation(b).to_value(u.arcsec)) < 1e-9
    # the same as astropy's own slicing, for a cutout inside the image
    x0, y0 = int(stack.table["cutout_x0"][0]), int(stack.table["cutout_y0"][0])
    sliced = image.wcs[y0:y0 + 16, x0:x0 + 16]
    assert np.allclose(sliced.wcs.crpix, stack.wcs[0].wcs.crpix)
    # the truth sky position lands on cutout_x, cutout_y
    sky = image.wcs.pixel_to_world(table["x"][0], table["y"][0])
    px, py = stack.wcs_of(0).world_to_pixel(sky)
    assert px == pytest.approx(stack.table["cutout_x"][0], abs=1e-6)
    assert py == pytest.approx(stack.table["cutout_y"][0], abs=1e-6)
    assert len(stack.wcs) == 3 and len(stack.wcs[1:]) == 2
    # pixel-only images: no WCS
    plain = make_cutouts((_ramp(), None), QTable({"x": [50.0], "y": [50.0]}), size=4)
    assert plain.wcs_of(0) is None and plain.image_wcs is None


def test_cutout_wcs_with_cd_matrix_and_sip():
    header = fits.Header()
    header.update({"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRVAL1": 10.0,
                   "CRVAL2": -30.0, "CRPIX1": 60.0, "CRPIX2": 45.0, "CD1_1": -2e-4,
                   "CD1_2": 1e-5, "CD2_1": 1.2e-5, "CD2_2": 2e-4, "A_ORDER": 2, "B_ORDER": 2,
                   "A_2_0": 2e-5, "A_1_1": -1e-5, "B_0_2": 3e-5, "B_1_1": 1e-5})
    image = load_image((_ramp(), header))
    assert image.wcs.sip is not None
    table = QTable({"x": [30.0], "y": [70.0], "bbox_xmin": [20], "bbox_xmax": [41],
                    "bbox_ymin": [60], "bbox_ymax": [75]})
    for kwargs in ({"size": 12}, {"size": "bbox", "output_size": 8, "pad": 1}):
        stack = make_cutouts(image, table, **kwargs)
        s = stack.table["cutout_scale"][0]
        n = stack.cutout_shape[0]
        j, i = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
        X, Y = stack.cutout_to_image(0, j, i)
        a = stack.wcs_of(0).pixel_to_world(j, i)
        b = image.wcs.pixel_to_world(X, Y)
        assert np.max(a.separation(b).to_value(u.arcsec)) < 1e-6, s


# -------------------------------------------------------------- close crops
def test_bbox_close_crops(radio):
    image, truth = radio
    extended = truth[truth["kind"] != "compact"]
    stack = make_cutouts(image, extended, size="bbox", output_size=32, pad=0.1)
    assert stack.data.shape == (len(extended), 32, 32)
    w = extended["bbox_xmax"] - extended["bbox_xmin"] + 1
    h = extended["bbox_ymax"] - extended["bbox_ymin"] + 1
    side = np.maximum(w, h)
    crop = side + 2 * np.ceil(0.1 * side)
    assert np.allclose(stack.table["cutout_scale"], crop / 32)
    # the bbox lies inside the crop, centred to within a pixel
    x0, y0 = stack.table["cutout_x0"], stack.table["cutout_y0"]
    left, right = extended["bbox_xmin"] - x0, x0 + crop - 1 - extended["bbox_xmax"]
    bottom, top = extended["bbox_ymin"] - y0, y0 + crop - 1 - extended["bbox_ymax"]
    assert (left >= 0).all() and (bottom >= 0).all()
    assert np.all(np.abs(left - right) <= 1) and np.all(np.abs(bottom - top) <= 1)
    # the source (flux-weighted centre) maps to cutout_x/y; the sky matches through the WCS
    for k in range(len(extended)):
        sky = extended["sky_centroid"][k]
        px, py = stack.wcs_of(k).world_to_pixel(sky)
        assert px == pytest.approx(stack.table["cutout_x"][k], abs=1e-6)
        assert py == pytest.approx(stack.table["cutout_y"][k], abs=1e-6)
    # resized pixel values keep the surface brightness: the peak survives (smoothed a bit)
    for k in range(len(extended)):
        peak_image = float(extended["peak"][k].to_value(u.Jy / u.beam))
        peak_cut = float(np.nanmax(stack.data[k]))
        assert 0.5 * peak_image < peak_cut < 1.2 * peak_image
    # pad in pixels, and a minimum size
    px = make_cutouts(image, extended, size="bbox", output_size=32, pad=3, min_size=40)
    assert np.allclose(px.table["cutout_scale"] * 32, np.maximum(side + 6, 40))


def test_bbox_crop_at_edge_is_nan_aware():
    data = np.ones((50, 50), dtype=np.float32)
    table = QTable({"bbox_xmin": [0, 20], "bbox_xmax": [19, 29], "bbox_ymin": [10, 20],
                    "bbox_ymax": [29, 29]})
    stack = make_cutouts((data, None), table, size="bbox", output_size=10, pad=10)
    assert stack.table["edge"].tolist() == [True, False]
    # crop x: -10..29 (40 px -> 10): the left quarter is outside the image
    cut = stack.data[0]
    assert np.isnan(cut[:, :2]).all() and np.allclose(cut[:, 3:], 1.0)
    assert np.allclose(stack.data[1], 1.0)
    # the bbox centre stands in for a position
    assert stack.table["cutout_x"][1] == pytest.approx(4.5)


def test_fixed_size_resized():
    image = (_ramp(), _wcs())
    stack = make_cutouts(image, QTable({"x": [60.0], "y": [50.0]}), size=32, output_size=16)
    assert stack.cutout_shape == (16, 16) and stack.table["cutout_scale"][0] == 2
    # 2x2 averages of a linear ramp: the value at the centre of each block
    X, Y = stack.cutout_to_image(0, 8.0, 8.0)
    assert (X, Y) == (60.5, 50.5)
    assert stack.data[0, 8, 8] == pytest.approx(1000 * 50.5 + 60.5, rel=1e-4)
    with pytest.raises(InputError, match="aspect ratio"):
        make_cutouts(image, QTable({"x": [60.0], "y": [50.0]}), size=32, output_size=(16, 8))


# ----------------------------------------------------------- stack and I/O
def _sample_stack():
    image = SkyImage(_ramp(), wcs=_wcs(), unit=u.Jy / u.beam)
    table = QTable({"id": [1, 2, 3], "x": [60.0, 1.0, 30.5], "y": [50.0, 1.0, 20.2]})
    table["sky_centroid"] = image.wcs.pixel_to_world(table["x"], table["y"])
    table["flux"] = [1.0, 2.0, 3.0] * u.mJy
    table["name"] = ["a", "bb", "ccc"]
    table["flux"].info.description = "total flux"
    table.meta["survey"] = "test"
    return make_cutouts(image, table, size=12)


def _assert_same(a, b, rows=None):
    assert len(a) == len(b) and a.data.shape == b.data.shape
    assert np.array_equal(a.data, b.data, equal_nan=True)
    assert a.table.colnames == b.table.colnames
    for name in a.table.colnames:
        if name == "cutout_parent":
            continue  # renumbered when stacks are split or joined: the WCS is compared below
        ca, cb = a.table[name], b.table[name]
        if isinstance(ca, SkyCoord):
            assert np.all(ca.separation(cb).to_value(u.arcsec) < 1e-9)
        elif ca.dtype.kind == "f":
            assert np.array_equal(np.asarray(ca), np.asarray(cb), equal_nan=True), name
            assert getattr(ca, "unit", None) == getattr(cb, "unit", None)
        else:
            assert ca.tolist() == cb.tolist(), name
    for k in range(len(a)):
        wa, wb = a.wcs_of(k), b.wcs_of(k)
        if wa is None:
            assert wb is None
            continue
        j, i = np.meshgrid(np.arange(a.cutout_shape[1], dtype=float),
                           np.arange(a.cutout_shape[0], dtype=float))
        pa, pb = wa.pixel_to_world_values(j, i), wb.pixel_to_world_values(j, i)
        assert np.array_equal(pa[0], pb[0]) and np.array_equal(pa[1], pb[1])


def test_write_read_round_trip(tmp_path):
    stack = _sample_stack()
    stack.write(tmp_path / "stack.fits")
    again = CutoutStack.read(tmp_path / "stack.fits")
    _assert_same(stack, again)
    assert again.unit == u.Jy / u.beam
    assert isinstance(again.table["sky_centroid"], SkyCoord)
    assert again.table["flux"].unit == u.mJy
    assert again.table["flux"].info.description == "total flux"
    assert again.table.meta["input_meta"]["survey"] == "test"
    assert again.table.meta["versions"] == stack.table.meta["versions"]
    assert again.table["edge"].dtype == bool and again.table["name"][2] == "ccc"
    with pytest.raises(InputError, match="exists"):
        stack.write(tmp_path / "stack.fits")
    stack.write(tmp_path / "stack.fits", overwrite=True)
    # resized close crops and several parents survive too
    boxes = QTable({"bbox_xmin": [10, 40], "bbox_xmax": [29, 45], "bbox_ymin": [5, 60],
                    "bbox_ymax": [20, 70]})
    crops = make_cutouts((_ramp(), _wcs()), boxes, size="bbox", output_size=12)
    files = cutouts_from_files([example_image_path()] * 2, size=12)
    for s in (crops, files, crops[:0]):
        s.write(tmp_path / "other.fits", overwrite=True)
        _assert_same(s, CutoutStack.read(tmp_path / "other.fits"))


def test_read_rejects_other_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        CutoutStack.read(tmp_path / "missing.fits")
    fits.PrimaryHDU(np.zeros((3, 3))).writeto(tmp_path / "plain.fits")
    with pytest.raises(InputError, match="not a CutoutStack file.*PRIMARY"):
        CutoutStack.read(tmp_path / "plain.fits")


def test_indexing_and_concatenate():
    stack = _sample_stack()
    assert len(stack) == 3 and "3 cutouts of 12x12" in repr(stack)
    one = stack[1]
    assert isinstance(one, CutoutStack) and len(one) == 1 and one.table["id"][0] == 2
    assert len(stack[1:]) == 2 and len(stack[np.array([True, False, True])]) == 2
    assert stack[[2, 0]].table["id"].tolist() == [3, 1]
    _assert_same(stack[2], stack[[2]])
    assert stack[2].wcs_of(0).wcs.crpix.tolist() == stack.wcs_of(2).wcs.crpix.tolist()
    with pytest.raises(IndexError):
        stack[np.array([True, False])]
    # two images: each row keeps its own parent's WCS
    other_image = SkyImage(_ramp() * 2, wcs=_wcs(crval=(20.0, -5.0)), unit="Jy/beam")
    columns = stack.table["id", "x", "y", "sky_centroid", "flux", "name"]
    other = make_cutouts(other_image, columns, size=12)
    both = CutoutStack.concatenate([stack, other])
    assert len(both) == 6 and len(both.parents) == 2 and both.image_wcs is None
    assert both.table["cutout_parent"].tolist() == [0, 0, 0, 1, 1, 1]
    _assert_same(both[3:], other)
    _assert_same(both[:3], stack)
    # concatenated stacks round-trip, and a subset writes only the parents it uses
    both[3:].write("sub.fits")
    back = CutoutStack.read("sub.fits")
    assert len(back.parents) == 1 and back.table["cutout_parent"].tolist() == [0, 0, 0]
    _assert_same(back, other)
    with pytest.raises(InputError, match="different shapes.*12x12.*8x8"):
        CutoutStack.concatenate([stack, make_cutouts(other_image, stack.table, size=8)])
    nounit = make_cutouts((_ramp(), None), QTable({"x": [5.0], "y": [5.0]}), size=12)
    with pytest.raises(InputError, match="different units"):
        CutoutStack.concatenate([stack, nounit])
    with pytest.raises(InputError, match="at least one"):
        CutoutStack.concatenate([])


def test_channels_axis_is_kept(tmp_path):
    rng = np.random.default_rng(0)
    stack = CutoutStack(rng.normal(size=(4, 3, 8, 8)))
    assert "x 3 channels" in repr(stack) and stack.cutout_shape == (8, 8)
    stack.write(tmp_path / "c.fits")
    again = CutoutStack.read(tmp_path / "c.fits")
    assert again.data.shape == (4, 3, 8, 8) and np.array_equal(again.data, stack.data)
    assert CutoutStack.concatenate([stack, again[:1]]).data.shape == (5, 3, 8, 8)


# -------------------------------------------------------------- multi-band
def _three_bands():
    """z, r, g bands on one grid: ramps of different scales, each with its own holes."""
    ramp = _ramp()
    data = np.stack([ramp, -3.0 * ramp + 5.0, 1e-3 * ramp])
    data[1, 70:74, 90:94] = np.nan  # r has no data here
    mask = np.zeros(data.shape, dtype=bool)
    mask[2, 10:13, 100:103] = True  # g masked (no data) here
    mask[1, 70:74, 90:94] = True
    return SkyImage(data, wcs=_wcs(), mask=mask, bands=["z", "r", "g"],
                    band_units=["Jy/beam", "Jy/beam", "mJy"], source="zrg.fits")


def test_multiband_cutouts_equal_each_band_cutouts(tmp_path):
    image = _three_bands()
    table = QTable({"id": [1, 2, 3, 4, 5], "x": [60.0, 1.0, 92.3, 101.0, 40.6],
                    "y": [50.0, 1.0, 71.8, 11.0, 30.2]})
    stack = make_cutouts(image, table, size=12)
    assert stack.data.shape == (5, 3, 12, 12) and stack.data.dtype == np.float32
    assert stack.bands == ["z", "r", "g"] and stack.unit is None
    assert stack.band_units == [u.Jy / u.beam, u.Jy / u.beam, u.mJy]
    assert "x 3 bands (z, r, g)" in repr(stack) and stack.table.meta["bands"] == ["z", "r", "g"]
    edges = np.zeros(5, dtype=bool)
    for c, name in enumerate(image.bands):
        single = make_cutouts(image.band(name), table, size=12)
        # each band's cutouts are exactly the 2-D cutouts of that band
        assert np.array_equal(stack.data[:, c], single.data, equal_nan=True)
        assert np.array_equal(stack.band(name).data, single.data, equal_nan=True)
        assert stack.band(name).unit == image.band_units[c]
        for col in ("cutout_x0", "cutout_y0", "cutout_x", "cutout_y"):
            assert np.array_equal(stack.table[col], single.table[col])
        edges |= single.table["edge"]
        for k in range(5):  # the same per-cutout WCS
            assert stack.wcs_of(k).wcs.crpix.tolist() == single.wcs_of(k).wcs.crpix.tolist()
    # a cutout is an edge cutout when any band runs off the image or lacks data
    assert stack.table["edge"].tolist() == edges.tolist() == [False, True, True, True, False]
    assert np.isnan(stack.data[2, 1]).any() and not np.isnan(stack.data[2, [0, 2]]).any()
    assert np.isnan(stack.data[3, 2]).any() and not np.isnan(stack.data[3, :2]).any()
    # sky positions give the same cutouts
    by_sky = make_cutouts(image, QTable({"sky_centroid": image.wcs.pixel_to_world(
        table["x"], table["y"])}), size=12)
    assert np.array_equal(by_sky.data, stack.data, equal_nan=True)
    # round trip: bands and their units come back
    stack.write(tmp_path / "bands.fits")
    again = CutoutStack.read(tmp_path / "bands.fits")
    _assert_same(stack, again)
    assert again.bands == ["z", "r", "g"] and again.band_units == stack.band_units
    with fits.open(tmp_path / "bands.fits") as hdul:
        assert hdul[0].header["NBANDS"] == 3 and hdul[0].header["BAND2"] == "r"
        assert hdul[0].data.shape == (5, 3, 12, 12)
    # indexing keeps the bands; stacks of other bands do not concatenate
    assert stack[1:3].bands == ["z", "r", "g"]
    both = CutoutStack.concatenate([stack, again[:2]])
    assert len(both) == 7 and both.bands == ["z", "r", "g"]
    swapped = CutoutStack(stack.data[:, ::-1], stack.table, stack.parents, bands=["g", "r", "z"],
                          band_units=stack.band_units[::-1])
    with pytest.raises(InputError, match="different bands.*stack 0: z \\[Jy / beam\\].*"
                                         "stack 1: g \\[mJy\\]"):
        CutoutStack.concatenate([stack, swapped])
    with pytest.raises(InputError, match="different bands.*no bands"):
        CutoutStack.concatenate([stack, CutoutStack(stack.data)])
    with pytest.raises(InputError, match="no band 'i'; the bands are: z, r, g"):
        stack.band("i")
    with pytest.raises(InputError, match="2 band names.*shape \\(5, 3, 12, 12\\)"):
        CutoutStack(stack.data, bands=["z", "r"])


def test_multiband_close_crops_and_resizing(tmp_path):
    image = _three_bands()
    boxes = QTable({"bbox_xmin": [10, 40, 88], "bbox_xmax": [29, 45, 97],
                    "bbox_ymin": [5, 60, 68], "bbox_ymax": [20, 70, 77]})
    crops = make_cutouts(image, boxes, size="bbox", output_size=16, pad=2)
    resized = make_cutouts(image, QTable({"x": [50.0], "y": [40.0]}), size=32, output_size=16)
    assert crops.data.shape == (3, 3, 16, 16) and resized.data.shape == (1, 3, 16, 16)
    for c, name in enumerate(image.bands):
        single = make_cutouts(image.band(name), boxes, size="bbox", output_size=16, pad=2)
        assert np.allclose(crops.data[:, c], single.data, rtol=1e-6, equal_nan=True)
        assert np.array_equal(crops.table["cutout_scale"], single.table["cutout_scale"])
        one = make_cutouts(image.band(name), QTable({"x": [50.0], "y": [40.0]}), size=32,
                           output_size=16)
        assert np.allclose(resized.data[:, c], one.data, rtol=1e-6)
    assert crops.table["edge"].tolist() == [False, False, True]  # r's hole in the third
    crops.write(tmp_path / "crops.fits")
    again = CutoutStack.read(tmp_path / "crops.fits")
    _assert_same(crops, again)
    assert again.bands == ["z", "r", "g"]


# ----------------------------------------------------------------- bad input
def test_bad_input_messages():
    image = (_ramp(), None)
    table = QTable({"ra_deg": [1.0], "flux": [2.0]})
    with pytest.raises(InputError) as err:
        make_cutouts(image, table)
    message = str(err.value)
    for name in ("'x'", "'y'", "'sky_centroid'", "'ra'", "'dec'", "ra_deg", "flux"):
        assert name in message
    sky = QTable({"sky_centroid": SkyCoord([1.0], [2.0], unit="deg")})
    with pytest.raises(InputError, match="WCS"):
        make_cutouts(image, sky)
    with pytest.raises(InputError, match="bbox_xmin.*lacks"):
        make_cutouts(image, QTable({"x": [1.0], "y": [1.0]}), size="bbox", output_size=8)
    with pytest.raises(InputError, match="output_size"):
        make_cutouts(image, QTable({"bbox_xmin": [1], "bbox_xmax": [3], "bbox_ymin": [1],
                                    "bbox_ymax": [3]}), size="bbox")
    for size in (0, -3, "big", (4, 5, 6), 2.5):
        with pytest.raises(InputError, match="size"):
            make_cutouts(image, QTable({"x": [1.0], "y": [1.0]}), size=size)
    with pytest.raises(InputError, match="no column.*'px'"):
        make_cutouts(image, QTable({"x": [1.0], "y": [1.0]}), xy=("px", "y"))
    with pytest.raises(InputError, match="rows 1"):
        make_cutouts(image, QTable({"x": [1.0, np.nan], "y": [1.0, 2.0]}))
    with pytest.raises(InputError, match="Table"):
        make_cutouts(image, [(1, 2)])


def test_empty_table_gives_empty_stack(tmp_path):
    for table in (QTable({"x": np.zeros(0), "y": np.zeros(0)}),
                  Table({"sky_centroid": SkyCoord([], [], unit="deg")})):
        stack = make_cutouts((_ramp(), _wcs()), table, size=16)
        assert stack.data.shape == (0, 16, 16) and len(stack.table) == 0
        assert "edge" in stack.table.colnames and len(stack.wcs) == 0
    empty = make_cutouts((_ramp(), _wcs()), QTable({"bbox_xmin": np.zeros(0, int),
                         "bbox_xmax": np.zeros(0, int), "bbox_ymin": np.zeros(0, int),
                         "bbox_ymax": np.zeros(0, int)}), size="bbox", output_size=8)
    assert empty.data.shape == (0, 8, 8)
    stack.write(tmp_path / "empty.fits")
    again = CutoutStack.read(tmp_path / "empty.fits")
    assert again.data.shape == (0, 16, 16) and again.table.colnames == stack.table.colnames


# --------------------------------------------------------------------- files
@pytest.fixture
def cutout_files(tmp_path):
    paths = []
    for k, (shape, crval) in enumerate([((40, 40), (150.0, 2.0)), ((40, 40), (151.0, 2.5)),
                                        ((41, 39), (152.0, 3.0))]):
        data = np.zeros(shape, dtype=np.float32)
        cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
        yy, xx = np.indices(shape)
        data += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 4.0) * (k + 1)
        header = _wcs(crval, shape).to_header()
        header["BUNIT"] = "Jy/beam"
        path = tmp_path / f"src{k}.fits"
        fits.PrimaryHDU(data, header=header).writeto(path)
        paths.append(path)
    return paths


def test_cutouts_from_files(cutout_files, tmp_path):
    with pytest.raises(InputError, match="differ in shape.*39x41: .*src2.fits.*size="):
        cutouts_from_files(cutout_files)
    stack = cutouts_from_files(cutout_files[:2])
    assert stack.data.shape == (2, 40, 40) and stack.table["edge"].tolist() == [False, False]
    stack = cutouts_from_files(cutout_files, size=16)
    assert stack.data.shape == (3, 16, 16) and len(stack.parents) == 3
    assert stack.table["file"].tolist() == [str(p) for p in cutout_files]
    assert "centre" in stack.table["ra"].info.description
    assert stack.unit == u.Jy / u.beam
    for k, path in enumerate(cutout_files):
        image = load_image(path)
        centre = image.wcs.pixel_to_world(stack.table["x"][k], stack.table["y"][k])
        assert centre.separation(stack.table["sky_centroid"][k]).arcsec < 1e-9
        assert stack.table["ra"][k].to_value(u.deg) == pytest.approx(centre.ra.deg)
        # each cutout keeps its own file's WCS
        assert stack.wcs_of(k).world_to_pixel(centre) == pytest.approx(
            (stack.table["cutout_x"][k], stack.table["cutout_y"][k]), abs=1e-9)
        # the source (the file's centre) is at the cutout centre
        cut = stack.data[k]
        assert np.unravel_index(np.argmax(cut), cut.shape) in [(8, 8), (7, 8), (8, 7), (7, 7)]
    # padding a small file: NaN around it, flagged
    padded = cutouts_from_files(cutout_files[:1], size=50)
    assert padded.table["edge"][0] and np.isnan(padded.data[0, :5]).all()
    assert np.isfinite(padded.data[0, 5:45, 5:45]).all()
    # a folder or a glob pattern; SkyView files (tabs in COMMENT cards) load too
    assert len(cutouts_from_files(tmp_path, size=8)) == 3
    assert len(cutouts_from_files(str(tmp_path / "src[01].fits"))) == 2
    sky = cutouts_from_files([example_image_path()], size=64)
    assert sky.data.shape == (1, 64, 64) and sky.table["x"][0] == 149.5
    assert cutouts_from_files([], size=8).data.shape == (0, 8, 8)


def test_cutouts_from_files_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no FITS file"):
        cutouts_from_files(tmp_path / "empty")
    (tmp_path / "bad.fits").write_text("not a FITS file")
    with pytest.raises(InputError, match="bad.fits"):
        cutouts_from_files([tmp_path / "bad.fits"], size=8)
    with pytest.raises(InputError, match="fixed size"):
        cutouts_from_files([example_image_path()], size="bbox")
