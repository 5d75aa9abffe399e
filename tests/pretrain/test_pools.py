# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Pools of unlabelled cutouts: mosaics, postage stamps, stacks and arrays."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import astropy.units as u
from astropy.io import fits

from astrofmtools import InputError
from astrofmtools.cutouts import make_cutouts
from astrofmtools.datasets import make_optical_field, make_wcs
from astrofmtools.io import write_image
from astrofmtools.pretrain.pools import POOL_COLUMNS, build_pool

SIZE = 32


@pytest.fixture(scope="module")
def field():
    """256x256 optical field of 12 bright stars, at least 6 pixels apart."""
    return make_optical_field(shape=(256, 256), n_galaxies=0, n_stars=12, snr_range=(30, 300),
                              seed=4)


def blobs(sources, shape=(160, 160), seed=0):
    """Gaussian sources ``(x, y, amplitude, sigma)`` in white noise of rms 1, with a WCS."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape)
    data = rng.normal(0.0, 1.0, shape)
    for x, y, amp, sigma in sources:
        data += amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return data.astype(np.float32), make_wcs(shape)


def centres(pool):
    """The parent pixel at index size // 2 of each cutout."""
    return (np.asarray(pool.table["cutout_x0"]) + SIZE // 2,
            np.asarray(pool.table["cutout_y0"]) + SIZE // 2)


FIND = {"find_options": {"psf_fwhm": 3.5}}


# ------------------------------------------------------------------ mosaics
def test_the_sources_of_a_mosaic_are_cut_out_centred_on_them(field, tmp_path):
    image, truth = field
    write_image(image, "field.fits")
    pool = build_pool("field.fits", size=SIZE, dedupe=0)
    assert pool.shape == (len(truth), SIZE, SIZE) and pool.data.dtype == np.float32
    x, y = centres(pool)
    d2 = (x[:, None] - truth["x"][None, :]) ** 2 + (y[:, None] - truth["y"][None, :]) ** 2
    nearest = d2.argmin(axis=1)
    assert sorted(nearest) == list(range(len(truth)))  # every star once
    assert np.all(np.abs(x - truth["x"][nearest]) <= 1)
    assert np.all(np.abs(y - truth["y"][nearest]) <= 1)
    t = pool.table
    assert t.colnames[:len(POOL_COLUMNS) + 1] == ["file", "kind", "index", "x", "y", "ra", "dec",
                                                  "sky_centroid", "snr", "source_size", "unit"]
    assert set(t["file"]) == {"field.fits"} and set(t["kind"]) == {"mosaic"}
    assert set(t["unit"]) == {"adu"} and pool.unit == u.adu
    sep = t["sky_centroid"].separation(truth["sky_centroid"][nearest])
    assert np.all(sep < 0.2 * u.arcsec)  # one pixel
    # each cutout keeps its WCS: its centre pixel is the parent's pixel
    sky = pool.wcs_of(3).pixel_to_world(SIZE // 2, SIZE // 2)
    assert sky.separation(image.wcs.pixel_to_world(x[3], y[3])) < 1e-6 * u.arcsec
    assert pool.table.meta["inputs"] == [{"file": "field.fits", "kind": "mosaic",
                                          "found": 12, "kept": 12}]
    assert pool.table.meta["stage"] == "pool"


def test_dedupe_keeps_the_brightest_of_close_sources():
    data, wcs = blobs([(40, 40, 30, 1.5), (48, 40, 80, 1.5), (90, 90, 50, 1.5)])
    every = build_pool((data, wcs), size=SIZE, dedupe=0, **FIND)
    assert len(every) == 3
    pool = build_pool((data, wcs), size=SIZE, dedupe=12, **FIND)
    x, y = centres(pool)
    assert sorted(zip(x.tolist(), y.tolist())) == [(48, 40), (90, 90)]
    assert pool.table.meta["inputs"][0]["found"] == 3
    # the default radius, size / 4 = 8 pixels, keeps both
    assert len(build_pool((data, wcs), size=SIZE, **FIND)) == 3


def test_snr_threshold_size_range_and_cap():
    # a faint source, a bright one, an extended one (sigma 6 pixels)
    data, wcs = blobs([(30, 30, 2.0, 1.5), (90, 30, 40, 1.5), (60, 90, 8, 6.0)])
    assert len(build_pool((data, wcs), size=SIZE, snr=5, **FIND)) == 3
    bright = build_pool((data, wcs), size=SIZE, snr=30, **FIND)
    assert sorted(centres(bright)[0].tolist()) == [60, 90]  # the faint one is gone
    compact = build_pool((data, wcs), size=SIZE, max_size=15, **FIND)
    assert sorted(centres(compact)[0].tolist()) == [30, 90]
    assert np.all(compact.table["source_size"] <= 15)
    extended = build_pool((data, wcs), size=SIZE, min_size=15, **FIND)
    assert centres(extended)[0].tolist() == [60]
    capped = build_pool((data, wcs), size=SIZE, max_per_image=1, **FIND)
    assert centres(capped)[0].tolist() == [90]  # the most significant


def test_edge_cutouts_are_flagged_or_dropped():
    data, wcs = blobs([(4, 60, 40, 1.5), (64, 64, 40, 1.5)])
    pool = build_pool((data, wcs), size=SIZE, **FIND)
    assert pool.table["edge"].tolist() == [True, False]
    assert np.isnan(pool.data[0, :, 0]).all()
    inner = build_pool((data, wcs), size=SIZE, keep_edge=False, **FIND)
    assert centres(inner)[0].tolist() == [64]


def test_mosaic_or_stamp_by_size_or_kind(field):
    image, _ = field
    # 256 pixels: more than 4 x 32, a mosaic; at most 4 x 64, a stamp
    assert set(build_pool(image, size=32, dedupe=0).table["kind"]) == {"mosaic"}
    stamp = build_pool(image, size=64)
    assert len(stamp) == 1 and stamp.table["kind"][0] == "stamp"
    assert stamp.table["x"][0] == 127.5
    assert len(build_pool(image, size=32, kind="stamp")) == 1
    assert set(build_pool(image, size=64, kind="mosaic", dedupe=0).table["kind"]) == {"mosaic"}


# ------------------------------------------------------------------ postage stamps
def casa_stamp(path, shape=(40, 44), blank=True):
    """A CASA-like stamp: int16 pixels scaled by BSCALE, axes RA, Dec, FREQ, STOKES."""
    raw = (np.arange(shape[0] * shape[1]) % 3000).reshape(shape).astype(np.int16)
    if blank:
        raw[0, 0] = -32768
    hdu = fits.PrimaryHDU(raw[None, None])
    h = hdu.header
    wcs = make_wcs(shape).to_header()
    for k in ("CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT"):
        for i in (1, 2):
            if f"{k}{i}" in wcs:
                h[f"{k}{i}"] = wcs[f"{k}{i}"]
    h["CTYPE3"], h["CRVAL3"], h["CRPIX3"], h["CDELT3"] = "FREQ", 1.4e9, 1.0, 1e6
    h["CTYPE4"], h["CRVAL4"], h["CRPIX4"], h["CDELT4"] = "STOKES", 1.0, 1.0, 1.0
    h["BUNIT"] = "JY/BEAM"
    h["BSCALE"], h["BZERO"], h["BLANK"] = 0.001, 0.0, -32768
    hdu.writeto(path)
    return raw


def test_postage_stamps_with_4d_headers_bscale_and_blank(tmp_path):
    (tmp_path / "stamps").mkdir()
    raw = casa_stamp(tmp_path / "stamps" / "a.fits")
    casa_stamp(tmp_path / "stamps" / "b.fits", shape=(20, 20), blank=False)
    nan_stamp = np.ones((50, 50), dtype=np.float32)
    nan_stamp[:12] = np.nan
    header = fits.Header({"BUNIT": "Jy/beam"})
    fits.PrimaryHDU(nan_stamp, header).writeto(tmp_path / "stamps" / "c.fits")
    pool = build_pool("stamps", size=SIZE)
    assert pool.shape == (3, SIZE, SIZE)
    assert [f.split("/")[-1] for f in pool.table["file"]] == ["a.fits", "b.fits", "c.fits"]
    assert set(pool.table["kind"]) == {"stamp"}
    # a: 40x44 cropped about its centre, pixel (20, 22) at (16, 16), scaled by BSCALE
    assert np.isclose(pool.data[0, 16, 16], raw[20, 22] * 0.001)
    assert np.allclose(pool.data[0], raw[4:36, 6:38] * 0.001)
    assert pool.table["x"][0] == 21.5 and pool.table["y"][0] == 19.5
    assert np.isfinite(pool.table["ra"][0]) and pool.unit == u.Jy / u.beam
    # b: 20x20 padded with NaN; c: its NaN rows flagged
    assert np.isnan(pool.data[1, 0, 0]) and pool.table["edge"].tolist() == [False, True, True]
    # the same from a glob pattern; resized instead of cropped
    assert np.array_equal(build_pool("stamps/*.fits", size=SIZE).data, pool.data,
                          equal_nan=True)
    resized = build_pool(str(tmp_path / "stamps" / "a.fits"), size=SIZE, stamps="resize")
    assert resized.shape == (1, SIZE, SIZE)
    assert resized.table["cutout_scale"][0] == 40 / SIZE
    assert np.isclose(resized.table["x"][0], 21.5)  # still the stamp's centre


def test_blank_pixels_are_nan_and_small_stamps_padded(tmp_path):
    raw = casa_stamp(tmp_path / "a.fits")
    pool = build_pool("a.fits", size=44)  # 40x44: two rows of padding above and below
    assert np.isnan(pool.data[0, :2]).all() and np.isnan(pool.data[0, -2:]).all()
    assert np.isnan(pool.data[0, 2, 0])  # raw[0, 0] is BLANK
    assert np.isclose(pool.data[0, 2, 1], raw[0, 1] * 0.001)
    assert pool.table["edge"][0]


# ------------------------------------------------------------------ stacks and arrays
def test_stacks_arrays_and_npz_files(field, tmp_path):
    image, truth = field
    stack = make_cutouts(image, truth[:3], size=48)
    stack.write("stack.fits")
    arrays = np.random.default_rng(0).normal(size=(2, 40, 40)).astype(np.float32)
    np.savez("images.npz", images=arrays, labels=np.array([1, 2]))
    pool = build_pool(["stack.fits", stack, arrays, "images.npz"], size=SIZE)
    assert pool.shape == (3 + 3 + 2 + 2, SIZE, SIZE)
    assert pool.table["file"].tolist()[::3][:3] == ["stack.fits", "<CutoutStack 1>",
                                                     "<array 2>"]
    assert set(pool.table["kind"]) == {"stack"}
    assert pool.table["index"].tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 0, 1]
    # a stack cropped from 48 to 32 about its centre: the source still at index 16
    assert np.array_equal(pool.data[0], stack.data[0, 8:40, 8:40])
    assert np.allclose(pool.table["x"][:3], truth["x"][:3])
    assert np.allclose(pool.table["cutout_x"][:3], truth["x"][:3] - pool.table["cutout_x0"][:3])
    sky = pool.wcs_of(1).pixel_to_world(pool.table["cutout_x"][1], pool.table["cutout_y"][1])
    assert sky.separation(truth["sky_centroid"][1]) < 1e-3 * u.arcsec
    # arrays: no parent image, so no position; their unit differs, so the pool has none
    assert np.isnan(pool.table["x"][6:]).all() and pool.unit is None
    assert pool.table["unit"].tolist()[:6] == ["adu"] * 6
    assert np.array_equal(pool.data[-2:], arrays[:, 4:36, 4:36])
    assert "sky_centroid" not in pool.table.colnames


def test_multichannel_arrays_and_resizing():
    cube = np.ones((3, 64, 64, 3), dtype=np.float32)  # N, H, W, C
    pool = build_pool(cube, size=SIZE, stamps="resize")
    assert pool.shape == (3, 3, SIZE, SIZE)
    assert np.allclose(pool.data, 1.0)
    assert np.allclose(pool.table["cutout_scale"], 2.0)


# ------------------------------------------------------------------ errors
def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "bad.fits").write_text("not a FITS file at all " * 200)
    with pytest.raises(InputError, match="bad.fits"):
        build_pool("bad.fits")
    np.savez("other.npz", pixels=np.ones((2, 8, 8)))
    with pytest.raises(InputError, match="other.npz.*no 'images' array"):
        build_pool("other.npz")
    with pytest.raises(InputError, match="missing.fits"):
        build_pool(["other.npz", "missing.fits"])
    with pytest.raises(InputError, match="<array 1>"):
        build_pool([np.ones((2, 8, 8)), np.array(["a", "b"])], size=8)
    fits.PrimaryHDU(np.full((300, 300), np.nan, dtype=np.float32)).writeto("nan.fits")
    with pytest.raises(InputError, match="nan.fits"):
        build_pool("nan.fits", size=32)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 1}, "size"), ({"kind": "cube"}, "kind"), ({"stamps": "pad"}, "stamps"),
    ({"dedupe": -1}, "dedupe"), ({"min_size": 10, "max_size": 5}, "min_size"),
    ({"max_per_image": 0}, "max_per_image"), ({"find_options": {"snr": 3}}, "snr"),
    ({"scheduler": "nowhere"}, "scheduler")])
def test_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        build_pool(np.ones((2, 8, 8)), **kwargs)


def test_bands_must_agree():
    with pytest.raises(InputError, match="bands"):
        build_pool([np.ones((2, 8, 8)), np.ones((2, 2, 8, 8))], size=8)
    with pytest.raises(InputError, match="at least one input"):
        build_pool([])


# ------------------------------------------------------------------ schedulers
def test_the_pool_is_the_same_serially_and_in_parallel(tmp_path):
    (tmp_path / "stamps").mkdir()
    files = []
    for seed in range(3):
        image, _ = make_optical_field(shape=(200, 200), n_galaxies=3, n_stars=6, seed=seed)
        write_image(image, f"field{seed}.fits")
        files.append(f"field{seed}.fits")
        casa_stamp(tmp_path / "stamps" / f"s{seed}.fits")
    inputs = files + ["stamps", np.ones((2, 40, 40), dtype=np.float32)]
    serial = build_pool(inputs, size=SIZE)
    threads = build_pool(inputs, size=SIZE, scheduler="threads", workers=2)
    with ThreadPoolExecutor(2) as executor:
        executor_pool = build_pool(inputs, size=SIZE, scheduler=executor)
    assert len(serial) > 10
    for other in (threads, executor_pool):
        assert np.array_equal(serial.data, other.data, equal_nan=True)
        assert serial.table.colnames == other.table.colnames
        for name in serial.table.colnames:
            a, b = serial.table[name], other.table[name]
            assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=a.dtype.kind == "f"), name
        assert [p.source for p in serial.parents] == [p.source for p in other.parents]
        assert serial.table.meta["inputs"] == other.table.meta["inputs"]
