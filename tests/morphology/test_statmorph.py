"""measure_morphology on synthetic Sersic galaxies with known truth, and its CLI."""

import numpy as np
import pytest
import astropy.units as u
from astropy.convolution import Gaussian2DKernel, convolve
from astropy.modeling.models import Sersic2D
from astropy.table import QTable

pytest.importorskip("statmorph")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.cli import main  # noqa: E402
from astrofmtools.cutouts import CutoutStack  # noqa: E402
from astrofmtools.morphology import (FLAG_FAILED, FLAG_NO_SOURCE,  # noqa: E402
                                     MORPHOLOGY_COLUMNS, lotz_class, measure_morphology,
                                     plot_morphology)

SIZE, R_EFF, ELLIP, FLUX, NOISE = 80, 6.0, 0.2, 4000.0, 1.0
PSF_SIGMA = 1.0  # pixels: FWHM 2.355


def sersic_galaxy(n, seed=0, size=SIZE, x0=None, y0=None, flux=FLUX, noise=NOISE):
    """A PSF-convolved Sersic galaxy (pixel-integrated, 5x5 sub-pixels) plus white noise."""
    c = (size - 1) / 2
    x0 = c + 0.3 if x0 is None else x0
    y0 = c - 0.2 if y0 is None else y0
    f = 5
    yy, xx = (np.mgrid[:size * f, :size * f] + 0.5) / f - 0.5
    model = Sersic2D(amplitude=1.0, r_eff=R_EFF, n=n, x_0=x0, y_0=y0, ellip=ELLIP, theta=0.6)
    image = model(xx, yy).reshape(size, f, size, f).mean(axis=(1, 3))
    image = convolve(image, Gaussian2DKernel(PSF_SIGMA, x_size=9, y_size=9).array)
    image *= flux / image.sum()
    return image + np.random.default_rng(seed).normal(0.0, noise, image.shape)


@pytest.fixture(scope="module")
def measured():
    """n = 1, n = 4 and pure noise, as a stack with an id column, measured once."""
    data = np.stack([sersic_galaxy(1), sersic_galaxy(4),
                     np.random.default_rng(7).normal(0.0, NOISE, (SIZE, SIZE))])
    table = QTable({"id": [11, 12, 13], "gini": [0.1, 0.2, 0.3]})
    stack = CutoutStack(data, table)
    return measure_morphology(stack, psf=2.355)


def _numbers(row):
    return (f"n={row['sersic_n']:.2f} Gini={row['gini']:.3f} M20={row['m20']:.2f} "
            f"C={row['concentration']:.2f} A={row['asymmetry']:.3f} "
            f"S={row['smoothness']:.3f} rhalf={row['sersic_rhalf']:.2f} "
            f"ellip={row['sersic_ellip']:.2f} flag={row['flag']}/{row['flag_sersic']}")


def test_sersic_index_gini_and_concentration_follow_the_profile(measured):
    disc, spheroid = measured[0], measured[1]
    got = f"n=1: {_numbers(disc)}; n=4: {_numbers(spheroid)}"
    assert disc["flag"] <= 1 and spheroid["flag"] <= 1, got
    assert disc["flag_sersic"] == 0 and spheroid["flag_sersic"] == 0, got
    # the Sersic fit (PSF-convolved model) finds the index to 20 %
    assert abs(disc["sersic_n"] - 1.0) < 0.2, got
    assert abs(spheroid["sersic_n"] - 4.0) < 0.8, got
    assert disc["sersic_rhalf"].value == pytest.approx(R_EFF, rel=0.1), got
    assert disc["sersic_ellip"] == pytest.approx(ELLIP, abs=0.05), got
    # Lotz et al. 2004 at good S/N: Gini ~0.4-0.5 for exponential, ~0.55-0.65 for de
    # Vaucouleurs profiles
    assert 0.40 < disc["gini"] < 0.55 < spheroid["gini"] < 0.68, got
    # Conselice's C: ~2.7 for n = 1, ~5 for an unconvolved n = 4 profile; the 2.4-pixel PSF
    # blurs the n = 4 core (r20 ~ 1.3 pix), which lowers C to ~3.5 here
    assert 2.4 < disc["concentration"] < 3.0, got
    assert 3.2 < spheroid["concentration"] < 5.5, got
    assert spheroid["concentration"] - disc["concentration"] > 0.5, got
    assert spheroid["m20"] < disc["m20"] < -1.5, got
    # symmetric profiles: asymmetry near 0, smooth
    assert abs(disc["asymmetry"]) < 0.1 and abs(spheroid["asymmetry"]) < 0.1, got
    assert abs(disc["smoothness"]) < 0.1 and abs(spheroid["smoothness"]) < 0.1, got
    assert list(lotz_class([disc["gini"], spheroid["gini"]],
                           [disc["m20"], spheroid["m20"]])) == ["Sb/Ir", "E/S0/Sa"], got
    # the centroid is where the galaxy was put
    assert disc["xc_centroid"].value == pytest.approx((SIZE - 1) / 2 + 0.3, abs=0.3), got
    assert disc["yc_centroid"].value == pytest.approx((SIZE - 1) / 2 - 0.2, abs=0.3), got
    assert disc["cutout_rms"] == pytest.approx(NOISE, rel=0.05), got


def test_pure_noise_is_flagged_not_an_error(measured):
    noise = measured[2]
    assert noise["flag"] == FLAG_NO_SOURCE and noise["flag_sersic"] == FLAG_NO_SOURCE
    assert np.isnan(noise["gini"]) and np.isnan(noise["sersic_n"])
    assert noise["segment_area"] == 0
    assert measured.meta["n_no_source"] == 1 and measured.meta["n_failed"] == 0


def test_the_stack_table_is_kept_with_units_descriptions_and_provenance(measured):
    assert list(measured["id"]) == [11, 12, 13]
    # an input column named like an output is kept as <name>_input
    assert list(measured["gini_input"]) == [0.1, 0.2, 0.3]
    assert measured.meta["renamed_columns"] == {"gini": "gini_input"}
    assert "cutout_x" in measured.colnames  # the stack's own columns too
    for name, (_, unit, description) in MORPHOLOGY_COLUMNS.items():
        assert measured[name].info.description == description
        assert getattr(measured[name], "unit", None) == unit, name
    assert measured["sersic_rhalf"].unit == u.pix and measured["segment_area"].unit == u.pix ** 2
    assert measured.meta["stage"] == "morphology"
    assert "statmorph" in measured.meta["versions"]
    assert measured.meta["weightmap"] == "background rms"


def test_an_array_without_a_table_and_nan_pixels():
    """Fast: one (H, W) galaxy whose corner has no data."""
    image = sersic_galaxy(1, seed=3, size=64)
    image[:10, :20] = np.nan
    table = measure_morphology(image, psf=2.355)
    assert len(table) == 1 and table.colnames[0] == "xc_centroid"
    row = table[0]
    assert row["flag"] <= 1 and abs(row["sersic_n"] - 1.0) < 0.2, _numbers(row)
    assert np.isfinite(row["gini"]) and np.isfinite(row["cutout_background"])


def test_the_source_at_the_table_position_is_measured_and_neighbours_are_masked():
    # a faint disc at (20, 22) and a brighter spheroid at the centre
    image = (sersic_galaxy(1, seed=4, x0=20.0, y0=22.0, flux=2000)
             + sersic_galaxy(4, seed=5, noise=0.0))
    stack = CutoutStack(image[np.newaxis], QTable({"cutout_x": [20.0], "cutout_y": [22.0]}))
    row = measure_morphology(stack, psf=2.355)[0]
    assert row["xc_centroid"].value == pytest.approx(20.0, abs=1.0), _numbers(row)
    assert row["yc_centroid"].value == pytest.approx(22.0, abs=1.0), _numbers(row)
    assert abs(row["sersic_n"] - 1.0) < 0.3, _numbers(row)
    # without deblending the two touching galaxies are one segment
    merged = measure_morphology(stack, psf=2.355, deblend=False)[0]
    assert merged["segment_area"] > 1.5 * row["segment_area"]


def test_a_given_segmentation_weightmap_and_gain():
    image = sersic_galaxy(1, seed=6, size=64)
    yy, xx = np.mgrid[:64, :64]
    disc = ((xx - 31.8) ** 2 + (yy - 31.3) ** 2 < 20 ** 2).astype(int)
    given = measure_morphology(image, segmentation=disc, weightmap=np.ones((64, 64)),
                               psf=2.355)
    assert given.meta["segmentation"] == "given" and given.meta["weightmap"] == "given"
    assert given["segment_area"][0].value == disc.sum()
    assert abs(given["sersic_n"][0] - 1.0) < 0.2, _numbers(given[0])
    with_gain = measure_morphology(image, gain=1e3, psf=2.355)
    assert with_gain.meta["weightmap"] == "statmorph from gain"
    assert with_gain["gini"][0] == pytest.approx(given["gini"][0], abs=0.05)


def test_an_empty_stack_gives_an_empty_table():
    table = measure_morphology(CutoutStack(np.zeros((0, 32, 32)), QTable({"id": np.zeros(0)})))
    assert len(table) == 0 and "gini" in table.colnames and "id" in table.colnames


def test_a_statmorph_error_gives_nan_and_flag_4(monkeypatch):
    import statmorph

    def broken(*args, **kwargs):
        raise ValueError("no convergence")

    monkeypatch.setattr(statmorph, "source_morphology", broken)
    table = measure_morphology(sersic_galaxy(1, size=48)[np.newaxis])
    assert table["flag"][0] == FLAG_FAILED and table["flag_sersic"][0] == FLAG_FAILED
    assert np.isnan(table["concentration"][0]) and table.meta["n_failed"] == 1


def test_bad_inputs_name_what_is_wrong():
    cube = np.zeros((2, 3, 16, 16))
    with pytest.raises(InputError, match="band="):
        measure_morphology(cube)
    with pytest.raises(InputError, match="segmentation has shape"):
        measure_morphology(cube[:, 0], segmentation=np.zeros((3, 16, 16), int))
    with pytest.raises(InputError, match="weightmap has shape"):
        measure_morphology(cube[:, 0], weightmap=np.ones((8, 8)))
    with pytest.raises(InputError, match="'not_an_option'"):
        measure_morphology(cube[:, 0], not_an_option=1)
    with pytest.raises(InputError, match="snr must be"):
        measure_morphology(cube[:, 0], snr=-1)
    with pytest.raises(InputError, match="psf must be"):
        measure_morphology(cube[:, 0], psf=np.zeros(5))


def test_plot_morphology_draws_into_given_axes(measured):
    from matplotlib.figure import Figure
    ax = Figure().add_subplot()
    assert plot_morphology(measured, ax=ax) is ax
    assert len(ax.lines) == 2  # the merger line and the E/S0/Sa - Sb/Ir line
    assert ax.collections[0].get_offsets().shape == (2, 2)  # the noise cutout is left out
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # M20 decreasing to the right
    with pytest.raises(InputError, match="'m20'"):
        plot_morphology(QTable({"gini": [0.5]}))


def test_cli_morphology_writes_one_row_per_cutout(capsys):
    from astrofmtools.catalog import read_table
    data = np.stack([sersic_galaxy(1, size=64), sersic_galaxy(4, size=64)])
    CutoutStack(data, QTable({"id": [5, 6]})).write("cutouts.fits")
    assert main(["morphology", "cutouts.fits", "-o", "morph.ecsv", "--png", "gini_m20.png",
                 "--psf-fwhm", "2.355", "-q"]) == 0
    table = read_table("morph.ecsv")
    assert len(table) == 2 and list(table["id"]) == [5, 6]
    assert table["sersic_n"][1] > table["sersic_n"][0]
    from matplotlib.image import imread
    assert imread("gini_m20.png").shape[2] == 4
    # existing output without --overwrite, and a missing input: exit 2, one-line message
    assert main(["morphology", "cutouts.fits", "-o", "morph.ecsv", "-q"]) == 2
    assert main(["morphology", "missing.fits", "-o", "other.ecsv", "-q"]) == 2
    assert "missing.fits" in capsys.readouterr().err
