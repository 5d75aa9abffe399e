import numpy as np
import pytest
import astropy.units as u
from astropy.io import fits
from astropy.nddata import NDData
from astropy.wcs import WCS

from astrofmtools import InputError
from astrofmtools.datasets import example_image_path
from astrofmtools.datasets import make_wcs
from astrofmtools.io import FitsPixels, SkyImage, iter_tiles, load_image, tile_grid, write_image
from astrofmtools.exceptions import MissingFileError


def radio_cube_header(shape, nfreq=1, nstokes=1):
    """A CASA-like 4-D header: RA, DEC, FREQ, STOKES."""
    h = fits.Header()
    h["NAXIS"] = 4
    h["NAXIS1"], h["NAXIS2"], h["NAXIS3"], h["NAXIS4"] = shape[1], shape[0], nfreq, nstokes
    for k, (ct, cv, cp, cd) in enumerate([("RA---SIN", 150.0, shape[1] / 2, -1e-3),
                                          ("DEC--SIN", 2.0, shape[0] / 2, 1e-3),
                                          ("FREQ", 1.4e9, 1.0, 1e6),
                                          ("STOKES", 1.0, 1.0, 1.0)], start=1):
        h[f"CTYPE{k}"], h[f"CRVAL{k}"], h[f"CRPIX{k}"], h[f"CDELT{k}"] = ct, cv, cp, cd
    h["BUNIT"] = "JY/BEAM"
    h["BMAJ"], h["BMIN"], h["BPA"] = 5e-3, 4e-3, 30.0
    return h


# --- the inputs load_image accepts -------------------------------------------------------

def test_every_input_kind_gives_the_same_image():
    data = np.arange(50 * 60, dtype=np.float32).reshape(50, 60)
    wcs = make_wcs((50, 60))
    header = wcs.to_header()
    header["BUNIT"] = "mJy/beam"
    fits.PrimaryHDU(data, header=header).writeto("a.fits")
    with fits.open("a.fits") as hdul:
        inputs = ["a.fits", hdul, hdul[0], (data, header), NDData(data, wcs=wcs, unit="mJy/beam")]
        images = [load_image(source) for source in inputs]
    for image in images:
        assert isinstance(image, SkyImage)
        np.testing.assert_array_equal(image.data, data)
        assert image.unit == u.mJy / u.beam
        sky = image.wcs.pixel_to_world(10, 20)
        assert sky.separation(wcs.pixel_to_world(10, 20)).arcsec < 1e-6
    image = load_image((data, wcs))
    assert image.unit is None and image.mask.sum() == 0
    assert load_image(image) is image


def test_first_hdu_with_data_is_chosen(astropy_test_file):
    # HST STIS raw file from astropy's tests: empty primary, SCI in HDU 1
    image = load_image(astropy_test_file("io/fits/tests/data/o4sp040b0_raw.fits"))
    assert image.shape == (44, 62)
    assert image.source.endswith("[1]")
    assert image.wcs is None  # pixel-only work is allowed
    second = load_image(astropy_test_file("io/fits/tests/data/o4sp040b0_raw.fits"),
                        hdu=("SCI", 2))
    assert second.source.endswith("[4]")


@pytest.mark.parametrize("relative", ["modeling/tests/data/1904-66_AZP.fits",
                                      "io/fits/hdu/compressed/tests/data/m13.fits"])
def test_real_files_keep_their_wcs(relative, astropy_test_file):
    """Parkes (AZP projection) and DSS (TAN) images from astropy's test data."""
    path = astropy_test_file(relative)
    image = load_image(path)
    reference = WCS(fits.getheader(path)).celestial
    ny, nx = image.shape
    x, y = np.meshgrid(np.linspace(0, nx - 1, 7), np.linspace(0, ny - 1, 7))
    sky = image.wcs.pixel_to_world(x, y)
    ok = np.isfinite(sky.spherical.lon.deg)
    ref = reference.pixel_to_world(x, y)
    assert ok.sum() > 20
    assert sky[ok].separation(ref[ok]).deg.max() < 1e-9
    # pixel -> sky -> pixel round trip to 1e-6 deg
    xb, yb = image.wcs.world_to_pixel(sky[ok])
    back = image.wcs.pixel_to_world(xb, yb)
    assert back.separation(sky[ok]).deg.max() < 1e-6
    assert np.abs(xb - x[ok]).max() < 1e-6


def test_shipped_first_image():
    image = load_image(example_image_path())
    assert image.shape == (300, 300)
    assert image.unit == u.Jy / u.beam
    assert image.data.dtype.isnative
    assert image.beam.major.to_value(u.arcsec) == pytest.approx(5.4)
    assert image.pixel_scale.to_value(u.arcsec) == pytest.approx(1.8)
    assert image.beam_pixels[0] == pytest.approx(3.0)
    centre = image.wcs.pixel_to_world(149.5, 149.5)  # CRPIX 150.5 is 1-based
    assert centre.ra.deg == pytest.approx(216.014, abs=1e-3)
    assert centre.dec.deg == pytest.approx(0.499, abs=1e-3)


# --- pixel encodings -------------------------------------------------------------------

def test_int16_bscale_bzero_and_blank():
    raw = np.array([[0, 1, 2], [3, -32768, 5]], dtype=np.int16)
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BSCALE"], hdu.header["BZERO"], hdu.header["BLANK"] = 2.0, 100.0, -32768
    hdu.writeto("ntt.fits")
    image = load_image("ntt.fits")
    assert image.data.dtype.kind == "f"
    np.testing.assert_allclose(image.data[0], [100, 102, 104])
    assert np.isnan(image.data[1, 1]) and image.mask[1, 1] and image.mask.sum() == 1
    assert image.wcs is None


def test_integer_blank_without_scaling():
    raw = np.array([[7, 1], [7, 3]], dtype=np.int32)
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BLANK"] = 7
    hdu.writeto("blank.fits")
    image = load_image("blank.fits")
    np.testing.assert_array_equal(image.mask, [[True, False], [True, False]])
    assert image.data[0, 1] == 1


def test_big_endian_and_nan():
    data = np.ones((10, 12), dtype=">f8")
    data[3, 4] = np.nan
    image = load_image((data, None))
    assert image.data.dtype.isnative and image.data.dtype == np.float64
    assert image.mask.sum() == 1 and image.mask[3, 4]


def test_degenerate_radio_axes_are_dropped():
    shape = (40, 50)
    header = radio_cube_header(shape)
    data = np.random.default_rng(1).normal(size=(1, 1) + shape).astype(np.float32)
    fits.PrimaryHDU(data, header=header).writeto("casa.fits")
    image = load_image("casa.fits")
    assert image.shape == shape
    assert image.wcs.naxis == 2 and image.wcs.wcs.ctype[0] == "RA---SIN"
    full = WCS(header)
    sky = full.pixel_to_world(10, 20, 0, 0)[0]
    assert image.wcs.pixel_to_world(10, 20).separation(sky).deg < 1e-9
    assert image.beam.major.to_value(u.arcsec) == pytest.approx(18.0)
    assert image.beam.pa.to_value(u.deg) == 30.0
    assert image.unit == u.Jy / u.beam


def test_cube_needs_a_plane():
    shape = (20, 30)
    header = radio_cube_header(shape, nfreq=3)
    data = np.arange(3 * 20 * 30, dtype=np.float32).reshape(1, 3, 20, 30)
    fits.PrimaryHDU(data, header=header).writeto("cube.fits")
    with pytest.raises(InputError,
                       match=r"cube.fits\[0\].*FITS axis 3 \(FREQ\) has 3 planes.*plane="):
        load_image("cube.fits")
    image = load_image("cube.fits", plane=(0, 2))
    np.testing.assert_array_equal(image.data, data[0, 2])
    assert image.wcs.naxis == 2
    with pytest.raises(InputError, match="plane=.*does not fit"):
        load_image("cube.fits", plane=(0, 3))


def test_memmapped_large_file_and_tiles():
    data = np.random.default_rng(2).normal(size=(300, 410)).astype(">f4")
    fits.PrimaryHDU(data, header=make_wcs((300, 410)).to_header()).writeto("big.fits")
    image = load_image("big.fits", memmap=True)
    assert image.mask is None
    assert isinstance(image.data, FitsPixels)  # left in the file, read by tiles
    tiles = list(iter_tiles(image, tile_size=128, overlap=24))
    covered = np.zeros(data.shape, dtype=int)
    for tile in tiles:
        assert tile.data.dtype.isnative
        np.testing.assert_array_equal(tile.data, data[tile.slices])
        covered[tile.core] += 1
        # the tile WCS is the mosaic WCS shifted by the tile origin
        y0, x0 = tile.origin
        a = tile.wcs.pixel_to_world(5.0, 7.0)
        b = image.wcs.pixel_to_world(5.0 + x0, 7.0 + y0)
        assert a.separation(b).arcsec < 1e-8
    assert (covered == 1).all()


@pytest.mark.parametrize("n", [50, 128, 129, 300, 1000])
def test_tile_cores_cover_once(n):
    grid = tile_grid((n, 2 * n + 1), tile_size=128, overlap=32)
    covered = np.zeros((n, 2 * n + 1), dtype=int)
    for slices, core in grid:
        covered[core] += 1
        for s, c in zip(slices, core):
            assert s.start <= c.start < c.stop <= s.stop
            assert s.stop - s.start == min(128, n if s is slices[0] else 2 * n + 1)
    assert (covered == 1).all()


def test_write_and_reload_roundtrip():
    image = load_image(example_image_path())
    write_image(image, "copy.fits")
    again = load_image("copy.fits")
    np.testing.assert_array_equal(again.data, image.data)
    assert again.beam == image.beam and again.unit == image.unit
    with pytest.raises(InputError, match="exists"):
        write_image(image, "copy.fits")


# --- bad input ---------------------------------------------------------------------------

def test_missing_file():
    with pytest.raises(MissingFileError, match="nothere.fits"):
        load_image("nothere.fits")


def test_not_fits():
    with open("notes.fits", "w") as f:
        f.write("this is not a FITS file\n" * 200)
    with pytest.raises(InputError, match="notes.fits.*not a readable FITS"):
        load_image("notes.fits")
    open("empty.fits", "w").close()
    with pytest.raises(InputError, match="empty.fits.*empty"):
        load_image("empty.fits")


def test_truncated_fits():
    fits.PrimaryHDU(np.ones((200, 200), dtype=np.float32)).writeto("full.fits")
    with open("full.fits", "rb") as f:
        raw = f.read()
    with open("cut.fits", "wb") as f:
        f.write(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="cut.fits.*truncated"):
        load_image("cut.fits")


def test_no_image_hdu_and_table_hdu():
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto("table.fits")
    with pytest.raises(InputError, match="table.fits has no HDU with image data.*BinTableHDU"):
        load_image("table.fits")
    with pytest.raises(InputError, match=r"HDU 1 of table.fits is a table"):
        load_image("table.fits", hdu=1)
    with pytest.raises(InputError, match=r"table.fits has no HDU 5; it has 2 HDU"):
        load_image("table.fits", hdu=5)
    with pytest.raises(InputError, match="is a table"):
        load_image(table)


def test_all_nan_and_zero_size():
    with pytest.raises(InputError, match="no finite pixel"):
        load_image((np.full((5, 5), np.nan), None))
    with pytest.raises(InputError, match="empty"):
        load_image((np.zeros((0, 5)), None))
    with pytest.raises(InputError, match="1-D"):
        load_image((np.zeros(5), None))
    with pytest.raises(InputError, match="Cannot load an image from a list"):
        load_image([1, 2])


def test_no_wcs_sky_outputs_say_so():
    image = load_image((np.ones((5, 5)), None))
    assert not image.has_wcs and image.pixel_scale is None and image.beam_pixels is None
    with pytest.raises(InputError, match="sky coordinates need a celestial WCS"):
        image.require_wcs()
