"""
Multi-band inputs: `load_bands` reprojects images of one sky onto one grid
and `mosaic` co-adds tiles.

The evidence: one truth catalogue (sky positions and fluxes) rendered onto
two grids that differ in pixel scale, rotation and projection; after
reprojection the sources sit within 0.2 px of where the reference WCS puts
them, ``exact`` conserves total counts to 1 %, and the footprint marks
exactly the pixels the other image does not cover.
"""

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel
from photutils.centroids import centroid_2dg, centroid_sources
from scipy.ndimage import binary_dilation, map_coordinates

from astrofmtools import InputError
from astrofmtools.datasets import example_image_path, make_radio_field
from astrofmtools.io import SkyImage, load_bands, load_image, mosaic
from astrofmtools.io.reprojection import _is_per_pixel

CENTER = SkyCoord(150.0, 2.0, unit="deg")
FWHM = 4.0  # arcsec, the "PSF" of both renderings


def make_wcs(shape, scale, rotation=0.0, projection="TAN", center=CENTER):
    """A WCS with ``scale`` arcsec pixels, rotated by ``rotation`` degrees."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = [f"RA---{projection}", f"DEC--{projection}"]
    wcs.wcs.crval = [center.ra.deg, center.dec.deg]
    wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    c, s = np.cos(np.radians(rotation)), np.sin(np.radians(rotation))
    d = scale / 3600
    wcs.wcs.cd = [[-d * c, d * s], [d * s, d * c]]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


def truth_catalogue(n=20, radius=70.0, separation=16.0, seed=1):
    """
    Sky positions within ``radius`` arcsec of CENTER, at least ``separation``
    arcsec apart (4 FWHM: no blends), and total fluxes.
    """
    rng = np.random.default_rng(seed)
    offsets = []
    while len(offsets) < n:
        r, phi = radius * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        xy = np.array([r * np.cos(phi), r * np.sin(phi)])
        if all(np.hypot(*(xy - other)) > separation for other in offsets):
            offsets.append(xy)
    dx, dy = np.transpose(offsets)
    sky = CENTER.spherical_offsets_by(dx * u.arcsec, dy * u.arcsec)
    return sky, rng.uniform(200, 2000, n)


def render(wcs, shape, sky, flux, per_beam=False):
    """
    Circular Gaussians of FWHM ``FWHM`` at the sky positions, as counts per
    pixel (each source sums to its flux) or, with ``per_beam``, in Jy/beam
    (peak = flux).
    """
    sigma = FWHM / 2.3548 / (np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600)
    x, y = wcs.world_to_pixel(sky)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape)
    for xi, yi, f in zip(x, y, flux):
        amplitude = f if per_beam else f / (2 * np.pi * sigma**2)
        image += amplitude * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * sigma**2))
    return image


REF_SHAPE = (256, 256)
OTHER_SHAPE = (320, 320)


@pytest.fixture(scope="module")
def two_grids():
    """
    The reference grid (TAN, 1"/px, north up) and another (SIN, 0.7"/px,
    rotated 35 deg, centred 15" away) with the same sources rendered on each.
    """
    ref_wcs = make_wcs(REF_SHAPE, 1.0)
    other_center = CENTER.spherical_offsets_by(10 * u.arcsec, -11 * u.arcsec)
    other_wcs = make_wcs(OTHER_SHAPE, 0.7, rotation=35, projection="SIN", center=other_center)
    sky, flux = truth_catalogue()
    ref = render(ref_wcs, REF_SHAPE, sky, flux)
    other = render(other_wcs, OTHER_SHAPE, sky, flux)
    return ref_wcs, other_wcs, ref, other, sky, flux


def centroid_offsets(data, wcs, sky):
    x, y = wcs.world_to_pixel(sky)
    cx, cy = centroid_sources(data, x, y, box_size=13, centroid_func=centroid_2dg)
    return np.hypot(cx - x, cy - y)


# --- positions: sources land where the WCS says -------------------------------------------

@pytest.mark.parametrize("method", ["interp", "exact", "adaptive"])
def test_sources_land_where_the_reference_wcs_says(two_grids, method):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    stack = load_bands([(ref, ref_wcs), (other, other_wcs)], method=method)
    assert stack.shape == (2,) + REF_SHAPE
    assert stack.data.dtype == np.float32
    moved = stack.band(1).data
    offsets = centroid_offsets(moved, ref_wcs, sky)
    # measured (0.7"/px rotated SIN grid -> 1"/px TAN): max offset 0.006 px with interp,
    # 0.0002 px with exact, 0.001 px with adaptive
    assert np.max(offsets) < 0.2
    assert np.median(offsets) < 0.05
    # the reference band is copied, not resampled
    np.testing.assert_array_equal(stack.data[0], ref.astype(np.float32))


def test_reprojection_works_both_ways(two_grids):
    """The TAN image onto the rotated SIN grid: reference given by index 1."""
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    stack = load_bands([(ref, ref_wcs), (other, other_wcs)], reference=1)
    assert stack.shape == (2,) + OTHER_SHAPE
    assert stack.wcs.wcs.ctype[0] == "RA---SIN"
    offsets = centroid_offsets(stack.band(0).data, other_wcs, sky)
    assert np.max(offsets) < 0.2


def test_reference_as_wcs_and_shape_or_other_image(two_grids):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    grid = make_wcs((200, 180), 1.3, rotation=-20)
    by_pair = load_bands([(ref, ref_wcs), (other, other_wcs)], reference=(grid, (200, 180)))
    by_image = load_bands([(ref, ref_wcs), (other, other_wcs)],
                          reference=(np.zeros((200, 180)), grid))
    assert by_pair.shape == (2, 200, 180)
    np.testing.assert_array_equal(by_pair.data, by_image.data)
    for band in range(2):
        assert np.max(centroid_offsets(by_pair.data[band], grid, sky)) < 0.2


# --- flux ------------------------------------------------------------------------------

def test_exact_conserves_total_counts(two_grids):
    ref_wcs, other_wcs, ref, other, sky, flux = two_grids
    stack = load_bands([(ref, ref_wcs), (other, other_wcs)], method="exact",
                       conserve_flux=True)
    total_in = other.sum()
    assert total_in == pytest.approx(flux.sum(), rel=1e-3)  # the rendering itself
    total_out = np.nansum(stack.data[1], dtype=float)
    # measured: ratio 1.000000 (the pixel areas differ by a factor 2.04)
    assert total_out / total_in == pytest.approx(1, abs=0.01)
    # per source too: sum in a 10" radius around each truth position
    x, y = ref_wcs.world_to_pixel(sky)
    yy, xx = np.mgrid[: REF_SHAPE[0], : REF_SHAPE[1]]
    for xi, yi, f in zip(x, y, flux):
        near = np.hypot(xx - xi, yy - yi) < 3 * FWHM
        assert np.nansum(stack.data[1][near]) / np.nansum(stack.data[0][near]) == \
            pytest.approx(1, abs=0.01)


def test_counts_are_scaled_by_default_and_surface_brightness_is_not(two_grids):
    ref_wcs, other_wcs, ref, other, sky, flux = two_grids
    counts = SkyImage(other, wcs=other_wcs, unit="ct")
    per_beam = render(other_wcs, OTHER_SHAPE, sky, flux, per_beam=True)
    radio = SkyImage(per_beam, wcs=other_wcs, unit="Jy/beam")
    stack = load_bands([(ref, ref_wcs), counts, radio], method="exact",
                       names=["ref", "counts", "radio"])
    assert stack.meta["conserve_flux"] == [False, True, False]  # no unit: not scaled
    # counts: totals conserved
    assert np.nansum(stack.data[1], dtype=float) / other.sum() == pytest.approx(1, abs=0.01)
    # Jy/beam: surface brightness kept, so the integrated flux (sum / beam area in
    # pixels) is conserved while the pixel sum changes with the pixel area
    beam_pix = np.pi / (4 * np.log(2)) * FWHM**2
    flux_out = np.nansum(stack.data[2], dtype=float) / (beam_pix / 1.0**2)
    flux_in = per_beam.sum() / (beam_pix / 0.7**2)
    assert flux_out / flux_in == pytest.approx(1, abs=0.01)
    # pixel by pixel, the surface brightness is that of the same sky rendered on the
    # reference grid, unscaled (a per-pixel scaling would be x2.04) to the accuracy of
    # averaging the 4" beam over 1" pixels (measured: 3.8 % of the peak at most)
    direct = render(ref_wcs, REF_SHAPE, sky, flux, per_beam=True)
    assert np.nanmax(np.abs(stack.data[2] - direct)) < 0.05 * flux.max()


# measured: ratios 0.999998 (interp) and 0.999997 (adaptive) for these well-sampled sources
@pytest.mark.parametrize("method, tolerance", [("interp", 0.01), ("adaptive", 0.02)])
def test_interp_and_adaptive_conserve_counts_approximately(two_grids, method, tolerance):
    ref_wcs, other_wcs, ref, other, sky, flux = two_grids
    stack = load_bands([(ref, ref_wcs), SkyImage(other, wcs=other_wcs, unit="electron")],
                       method=method)
    assert np.nansum(stack.data[1], dtype=float) / other.sum() == \
        pytest.approx(1, abs=tolerance)


def test_per_pixel_units():
    for unit in ("ct", "adu", "electron", "DN", "ph", "ct/s", "electron/s", "Jy", "mJy",
                 "nanomaggy", "Jy/pix", "erg/(s cm2 Angstrom)", "W/m2"):
        assert _is_per_pixel(u.Unit(unit)), unit
    for unit in ("Jy/beam", "MJy/sr", "Jy/arcsec2", "K", "mag", "erg/(s cm2 arcsec2)", "deg",
                 ""):
        assert not _is_per_pixel(u.Unit(unit)), unit
    assert not _is_per_pixel(None)


# --- footprint ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["interp", "exact"])
def test_footprint_marks_the_non_overlapping_area(method):
    ref_wcs = make_wcs(REF_SHAPE, 1.0)
    shifted = CENTER.spherical_offsets_by(100 * u.arcsec, 60 * u.arcsec)
    other_wcs = make_wcs((200, 200), 1.2, rotation=20, center=shifted)
    other = np.ones((200, 200))
    stack = load_bands([(np.ones(REF_SHAPE), ref_wcs), (other, other_wcs)], method=method)
    # where each reference pixel centre falls on the other grid
    yy, xx = np.mgrid[: REF_SHAPE[0], : REF_SHAPE[1]]
    ox, oy = pixel_to_pixel(ref_wcs, other_wcs, xx, yy)
    inside = (ox > -0.5) & (ox < 199.5) & (oy > -0.5) & (oy < 199.5)
    covered = ~stack.mask[1]
    # away from the boundary (2 px), no data outside and data everywhere inside
    assert not covered[~binary_dilation(inside, iterations=2)].any()
    assert covered[~binary_dilation(~inside, iterations=2)].all()
    # measured: 42.5 % of the reference covered, as predicted; interp marks exactly the
    # predicted pixels, exact also the 214 boundary pixels that are partly covered
    assert covered.mean() == pytest.approx(inside.mean(), abs=0.01)
    if method == "interp":
        np.testing.assert_array_equal(covered, inside)
    assert np.isnan(stack.data[1][stack.mask[1]]).all()
    assert np.isfinite(stack.data[1][covered]).all()
    assert not stack.mask[0].any()
    fp = stack.meta["footprint"]
    assert fp.shape == (2,) + REF_SHAPE and fp.dtype == np.float32
    np.testing.assert_array_equal(stack.mask[1], fp[1] == 0)
    assert set(stack.meta) >= {"footprint", "bands_sources", "method", "reference"}


def test_nan_pixels_of_an_input_are_masked(two_grids):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    holed = other.copy()
    holed[100:140, 100:140] = np.nan
    stack = load_bands([(ref, ref_wcs), (holed, other_wcs)])
    hole_sky = other_wcs.pixel_to_world(119.5, 119.5)
    hx, hy = ref_wcs.world_to_pixel(hole_sky)
    assert stack.mask[1][int(round(float(hy))), int(round(float(hx)))]
    assert 0.01 < stack.mask[1].mean() < 0.5


# --- names, units, beams ----------------------------------------------------------------

def write_band(path, data, wcs, **cards):
    header = wcs.to_header()
    for key, value in cards.items():
        header[key] = value
    fits.PrimaryHDU(data.astype(np.float32), header).writeto(path)
    return path


def test_names_units_and_beams_are_kept_per_band(tmp_path, two_grids):
    ref_wcs, other_wcs, ref, other, sky, flux = two_grids
    radio = write_band(tmp_path / "first_radio.fits", ref, ref_wcs, BUNIT="JY/BEAM",
                       BMAJ=5.4 / 3600, BMIN=5.4 / 3600, BPA=0.0)
    ir = SkyImage(other, wcs=other_wcs, unit="ct",
                  header=fits.Header({"FILTER": "W1"}))
    optical = write_band(tmp_path / "sdss_r.fits.gz", ref, ref_wcs, BUNIT="nanomaggy")
    anonymous = (other, other_wcs)
    stack = load_bands([radio, ir, optical, anonymous])
    assert stack.bands == ["first_radio", "W1", "sdss_r", "band3"]
    assert stack.band_units == [u.Unit("Jy/beam"), u.ct, u.nanomaggy, None]
    assert stack.band_beams[0].major.to_value(u.arcsec) == pytest.approx(5.4)
    assert stack.band_beams[1:] == [None, None, None]
    assert stack.unit is None and stack.beam is None  # not shared
    assert stack.meta["conserve_flux"] == [False, True, True, False]
    assert stack.meta["bands_sources"][0].endswith("first_radio.fits[0]")
    one = stack.band("W1")
    assert one.unit == u.ct and one.shape == REF_SHAPE
    assert "W1" in repr(stack)

    named = load_bands([radio, ir], names=["radio", "infrared"])
    assert named.bands == ["radio", "infrared"]

    # hdu= picks the HDU of every file
    sci = tmp_path / "two_hdus.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(ref.astype(np.float32),
                                                   ref_wcs.to_header(), name="SCI")]).writeto(sci)
    picked = load_bands([sci, (other, other_wcs)], hdu="SCI")
    assert picked.bands == ["two_hdus", "band1"]
    np.testing.assert_array_equal(picked.data[0], ref.astype(np.float32))

    # the same survey twice: numbered; shared unit and beam are the image's own
    twice = load_bands([load_image(example_image_path()), load_image(example_image_path())])
    assert twice.bands == ["FIRST", "FIRST_2"]
    assert twice.unit == u.Unit("Jy/beam")
    assert twice.beam.major.to_value(u.arcsec) == pytest.approx(5.4)


def test_block_size_and_parallel_give_the_same_result(two_grids):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    inputs = [(ref, ref_wcs), (other, other_wcs)]
    whole = load_bands(inputs)
    blocks = load_bands(inputs, block_size=(64, 64), parallel=2)
    np.testing.assert_allclose(blocks.data, whole.data, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(blocks.mask, whole.mask)


# --- mosaic ------------------------------------------------------------------------------

def test_mosaic_of_two_tiles_equals_the_original():
    image, _ = make_radio_field(shape=(256, 256), n_compact=20, n_extended=2, n_artefacts=0,
                                seed=3)
    left = Cutout2D(image.data, (79.5, 127.5), (256, 160), wcs=image.wcs)   # x 0..159
    right = Cutout2D(image.data, (177.5, 127.5), (256, 156), wcs=image.wcs)  # x 100..255
    tiles = [SkyImage(t.data, wcs=t.wcs, unit=image.unit, beam=image.beam)
             for t in (left, right)]
    both = mosaic(tiles)
    assert both.data.ndim == 2 and both.bands is None
    assert both.unit == image.unit and both.beam == image.beam
    assert abs(both.shape[0] - 256) <= 2 and abs(both.shape[1] - 256) <= 2
    # the original, bilinearly interpolated at each mosaic pixel centre
    yy, xx = np.mgrid[: both.shape[0], : both.shape[1]]
    ox, oy = pixel_to_pixel(both.wcs, image.wcs, xx, yy)
    expected = map_coordinates(image.data.astype(float), [oy, ox], order=1, cval=np.nan)
    inside = (ox > 1) & (ox < 254) & (oy > 1) & (oy < 254)
    overlap = inside & (both.meta["footprint"] > 1.5)
    assert overlap.sum() > 0.15 * inside.sum()  # 60 of 256 columns are in both tiles
    rms = np.std(image.data)
    # measured: max |difference| 1e-9 of the image rms, in the overlap and elsewhere
    assert np.nanmax(np.abs(both.data[overlap] - expected[overlap])) < 1e-3 * rms
    assert np.nanmax(np.abs(both.data[inside] - expected[inside])) < 1e-3 * rms
    # the union is covered; nothing beyond it
    assert not both.mask[inside].any()
    outside = (ox < -1) | (ox > 256) | (oy < -1) | (oy > 256)
    assert both.mask[outside].all()


def test_mosaic_resolution_and_units():
    image = load_image(example_image_path())
    a = Cutout2D(image.data, (99.5, 149.5), (200, 200), wcs=image.wcs)
    b = Cutout2D(image.data, (199.5, 149.5), (200, 200), wcs=image.wcs)
    coarse = mosaic([(a.data, a.wcs), (b.data, b.wcs)], resolution=3.6 * u.arcsec,
                    method="exact", combine_function="max")
    assert coarse.pixel_scale.to_value(u.arcsec) == pytest.approx(3.6)
    assert abs(coarse.shape[1] - 150) <= 2
    with pytest.raises(InputError, match="one unit"):
        mosaic([SkyImage(a.data, wcs=a.wcs, unit="Jy/beam"),
                SkyImage(b.data, wcs=b.wcs, unit="ct")])
    with pytest.raises(InputError, match="'mean', 'sum'"):
        mosaic([(a.data, a.wcs)], combine_function="median")
    with pytest.raises(InputError, match="resolution"):
        mosaic([(a.data, a.wcs)], resolution="fine")


# --- bad inputs --------------------------------------------------------------------------

def test_images_without_wcs_are_named(two_grids):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    with pytest.raises(InputError, match=r"images\[1\].*images\[2\].*have none"):
        load_bands([(ref, ref_wcs), (other, None), (ref, None)])


def test_images_that_do_not_overlap_are_named(two_grids):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    far = make_wcs((100, 100), 1.0, center=SkyCoord(151.0, 2.0, unit="deg"))
    with pytest.raises(InputError, match=r"images\[2\].*band 'far'.* not overlap"):
        load_bands([(ref, ref_wcs), (other, other_wcs), (np.ones((100, 100)), far)],
                   names=["a", "b", "far"])
    # the far side of the sky, where TAN is undefined
    antipode = make_wcs((100, 100), 1.0, center=SkyCoord(330.0, -2.0, unit="deg"))
    with pytest.raises(InputError, match=r"images\[1\].*not overlap"):
        load_bands([(ref, ref_wcs), (np.ones((100, 100)), antipode)])


def test_bad_method_lists_the_known_ones(two_grids):
    ref_wcs, _, ref, *_ = two_grids
    with pytest.raises(InputError, match="'interp', 'exact', 'adaptive'"):
        load_bands([(ref, ref_wcs)], method="nearest")


def test_multi_band_and_cube_inputs_are_refused(two_grids):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    stack = load_bands([(ref, ref_wcs), (other, other_wcs)], names=["r", "o"])
    with pytest.raises(InputError, match=r"images\[1\].*multi-band.*2 bands \(r, o\)"):
        load_bands([(ref, ref_wcs), stack])
    cube = np.stack([ref, ref, ref])
    with pytest.raises(InputError, match=r"images\[0\].*3-D cube"):
        load_bands([(cube, ref_wcs)])


def test_bad_names_and_references(two_grids):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    pair = [(ref, ref_wcs), (other, other_wcs)]
    with pytest.raises(InputError, match="unique.*radio"):
        load_bands(pair, names=["radio", "radio"])
    with pytest.raises(InputError, match="2 images"):
        load_bands(pair, names=["radio"])
    with pytest.raises(InputError, match="index"):
        load_bands(pair, reference=2)
    with pytest.raises(InputError, match="reference.*WCS"):
        load_bands(pair, reference=(np.ones((5, 5)), None))
    with pytest.raises(InputError, match="empty"):
        load_bands([])
    with pytest.raises(InputError, match="conserve_flux has 3"):
        load_bands(pair, conserve_flux=[True, False, True])


def test_an_all_sky_image_onto_a_small_grid_and_back():
    """Edges of an all-sky map have no place on a TAN grid: the overlap test copes."""
    sky = WCS(naxis=2)
    sky.wcs.ctype = ["RA---CAR", "DEC--CAR"]
    sky.wcs.crval = [0, 0]
    sky.wcs.crpix = [180.5, 90.5]
    sky.wcs.cdelt = [-1, 1]
    dec_map = np.tile(np.arange(-89.5, 90.0)[:, None], (1, 360))  # value = declination
    small = make_wcs((50, 50), 60.0, center=SkyCoord(150, 20, unit="deg"))
    stack = load_bands([(np.ones((50, 50)), small),
                        SkyImage(dec_map, wcs=sky, unit="deg")])  # not per pixel: unscaled
    assert not stack.mask.any()
    _, dec = small.pixel_to_world_values(*np.meshgrid(np.arange(50), np.arange(50)))
    np.testing.assert_allclose(stack.data[1], dec, atol=0.01)
    # the other way: 2500 counts on a 1-degree grid land in a few pixels, all of them
    # (measured: 1.0002; the pixel areas of the CAR grid shrink as cos(dec))
    back = load_bands([(dec_map, sky), SkyImage(np.ones((50, 50)), wcs=small, unit="ct")],
                      method="exact")
    assert np.nansum(back.data[1], dtype=float) == pytest.approx(2500, rel=1e-3)
    assert (~back.mask[1]).sum() <= 9


def test_an_overlap_of_nan_pixels_only_is_no_overlap(two_grids):
    ref_wcs, other_wcs, ref, other, sky, _ = two_grids
    blank = np.full(OTHER_SHAPE, np.nan)
    blank[0, 0] = 1.0  # a single pixel, outside the reference grid... almost
    with pytest.raises(InputError, match=r"images\[1\].*only NaN pixels"):
        load_bands([(ref, ref_wcs), (blank, other_wcs)])
