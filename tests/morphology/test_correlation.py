"""feature_morphology_correlation on synthetic features with a known dependence on a
morphometric, and its heat map."""

import sys

import numpy as np
import pytest
from astropy.table import QTable

from astrofmtools import InputError
from astrofmtools.morphology import (CORRELATION_COLUMNS, feature_morphology_correlation,
                                     plot_feature_morphology_correlation)

N, D = 300, 64


@pytest.fixture(scope="module")
def synthetic():
    """Features = outer(gini, v) * 5 + noise: PC1 is a linear (so monotonic) function of
    Gini; ``random`` is unrelated. Two rows flagged bad carry wild values."""
    rng = np.random.default_rng(42)
    gini = rng.uniform(0.3, 0.7, N)
    features = np.outer(gini, rng.normal(size=D)) * 5 + rng.normal(0.0, 0.1, (N, D))
    table = QTable({"gini": gini, "random": rng.normal(size=N),
                    "m20": -1.0 - 2.0 * gini ** 2 + rng.normal(0.0, 0.01, N),
                    "flag": np.zeros(N, np.int16)})
    table["gini"][[3, 7]] = [5.0, -5.0]
    table["flag"][[3, 7]] = [2, 4]
    table["m20"][10] = np.nan
    return features, table


def test_first_component_tracks_gini_not_a_random_column(synthetic):
    features, table = synthetic
    corr = feature_morphology_correlation(features, table, columns=["gini", "random", "m20"],
                                          n_components=4)
    got = "\n".join(corr.pformat(max_width=-1))
    assert corr.colnames == ["component", "explained_variance", "gini", "random", "m20"]
    assert corr["component"].tolist() == [1, 2, 3, 4]
    assert abs(corr["gini"][0]) > 0.9, got
    assert abs(corr["random"][0]) < 0.3, got
    # M20 falls monotonically with Gini: the rank correlation sees it as strongly
    assert abs(corr["m20"][0]) > 0.9, got
    assert np.sign(corr["m20"][0]) == -np.sign(corr["gini"][0]), got
    # the later components are noise: nothing tracks Gini there
    assert np.all(np.abs(corr["gini"][1:]) < 0.3), got
    # PC1 holds most of the variance of the standardised features, in decreasing order
    assert corr["explained_variance"][0] > 0.5, got
    assert np.all(np.diff(corr["explained_variance"]) <= 0), got
    # flagged rows skipped for every column, a NaN for its column only
    assert corr.meta["n_rows"] == N - 2
    assert corr.meta["n_used"] == {"gini": N - 2, "random": N - 2, "m20": N - 3}
    assert corr.meta["method"] == "spearman"


def test_spearman_matches_scipy_and_differs_from_pearson(synthetic):
    scipy_stats = pytest.importorskip("scipy.stats")
    features, table = synthetic
    good = np.asarray(table["flag"]) <= 1
    corr = feature_morphology_correlation(features, table, columns=["gini"], n_components=1)
    pearson = feature_morphology_correlation(features, table, columns=["gini"],
                                             n_components=1, method="pearson")
    # PC1 scores, recomputed: the gini correlation with them agrees with scipy's
    x = features[good]
    x = (x - x.mean(0)) / x.std(0)
    pc1 = x @ np.linalg.svd(x, full_matrices=False)[2][0]
    rho = scipy_stats.spearmanr(pc1, np.asarray(table["gini"])[good]).statistic
    r = scipy_stats.pearsonr(pc1, np.asarray(table["gini"])[good]).statistic
    assert abs(corr["gini"][0]) == pytest.approx(abs(rho), abs=1e-9)
    assert abs(pearson["gini"][0]) == pytest.approx(abs(r), abs=1e-9)
    assert pearson.meta["method"] == "pearson"


def test_numpy_svd_gives_the_same_table_as_scikit_learn(synthetic, monkeypatch):
    pytest.importorskip("sklearn")
    features, table = synthetic
    with_sklearn = feature_morphology_correlation(features, table, columns=["gini", "random"],
                                                  n_components=3)
    monkeypatch.setitem(sys.modules, "sklearn.decomposition", None)  # import fails
    with_numpy = feature_morphology_correlation(features, table, columns=["gini", "random"],
                                                n_components=3)
    assert (with_sklearn.meta["pca"], with_numpy.meta["pca"]) == ("scikit-learn", "numpy")
    for name in ("explained_variance", "gini", "random"):
        # the same signs: each component's largest loading is made positive
        np.testing.assert_allclose(with_numpy[name], with_sklearn[name], atol=1e-6)


def test_defaults_limits_and_errors(synthetic):
    features, table = synthetic
    table = table.copy()
    table["asymmetry"] = np.linspace(0, 1, N)
    corr = feature_morphology_correlation(features[:, :2], table)
    # the default columns the table has, in CORRELATION_COLUMNS order; at most D components
    assert corr.colnames[2:] == [c for c in CORRELATION_COLUMNS if c in table.colnames]
    assert len(corr) == 2
    # too few usable rows: an empty table with the columns
    empty = feature_morphology_correlation(features[:2], table[:2], columns=["gini"])
    assert len(empty) == 0 and empty.colnames == ["component", "explained_variance", "gini"]
    with pytest.raises(InputError, match="rows but the table has"):
        feature_morphology_correlation(features[:10], table)
    with pytest.raises(InputError, match="no column"):
        feature_morphology_correlation(features, table, columns=["sersic_n"])
    with pytest.raises(InputError, match="Unknown method"):
        feature_morphology_correlation(features, table, method="kendall")
    with pytest.raises(InputError, match="n_components"):
        feature_morphology_correlation(features, table, n_components=0)
    with pytest.raises(InputError, match=r"\(N, D\)"):
        feature_morphology_correlation(features[0], table)


def test_heat_map_draws_into_given_axes(synthetic, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    features, table = synthetic
    corr = feature_morphology_correlation(features, table, columns=["gini", "random"],
                                          n_components=3)
    corr["random"][2] = np.nan
    fig = Figure()
    ax = fig.add_subplot()
    out = plot_feature_morphology_correlation(corr, ax=ax, path=tmp_path / "heat.png")
    assert out is ax
    image = ax.get_images()[0]
    assert image.get_array().shape == (3, 2)
    # diverging colours centred on 0
    assert image.get_clim() == (-1.0, 1.0)
    assert image.get_cmap().name == "RdBu_r"
    # every finite cell has its value written in it; the NaN one is blank
    assert [t.get_text() for t in ax.texts] == [f"{corr[c][i]:.2f}" for i in range(3)
                                               for c in ("gini", "random")
                                               if np.isfinite(corr[c][i])]
    assert len(ax.texts) == 5
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gini", "random"]
    assert ax.get_yticklabels()[0].get_text().startswith("PC1 (")
    assert (tmp_path / "heat.png").stat().st_size > 0
    with pytest.raises(InputError, match="component"):
        plot_feature_morphology_correlation(QTable({"gini": [0.1]}))
