# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Feature maps (PCA then UMAP): class separation, fit/transform, PCA, balancing, PNG, CLI."""

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from astrofmtools.catalog import read_table, write_table
from astrofmtools.cli import main
from astrofmtools.embed import (Embedding, FeatureMap, balanced_indices, knn_purity, plot_map,
                                umap_map)
from astrofmtools.exceptions import InputError

pytest.importorskip("umap")
pytest.importorskip("sklearn")

CLASSES = np.array(["compact", "FRI", "FRII"])
DIM = 64


def blobs(counts, seed, centres_seed=0):
    """Three well-separated Gaussian blobs in 64-D feature space, with a source table."""
    centres = np.random.default_rng(centres_seed).normal(size=(3, DIM))
    rng = np.random.default_rng(seed)
    label = np.repeat(np.arange(3), counts)
    features = centres[label] + rng.normal(0, 0.25, (len(label), DIM))
    n = len(label)
    table = QTable({"id": np.arange(1, n + 1) + 1000 * seed,
                    "sky_centroid": SkyCoord(rng.uniform(0, 10, n), rng.uniform(-5, 5, n),
                                             unit="deg"),
                    "class": CLASSES[label],
                    "flux": rng.lognormal(0, 1, n) * u.mJy})
    return Embedding(features, table, meta={"backbone": "synthetic"})


@pytest.fixture(scope="module")
def survey():
    return blobs([100, 100, 100], seed=1)


@pytest.fixture(scope="module")
def survey_map(survey):
    """One map of the survey, shared by the tests (UMAP's first call compiles with numba)."""
    return FeatureMap(seed=0).fit(survey)


def xy(table):
    return np.c_[table["map_x"], table["map_y"]]


def test_map_keeps_classes_together(survey, survey_map):
    table = umap_map(survey, color="class", fit_on=survey_map)
    purity, by_class = knn_purity(xy(table), table["class"], k=10, per_class=True)
    assert purity >= 0.9
    assert min(by_class.values()) >= 0.9
    assert sorted(by_class) == sorted(CLASSES)
    # the fit set gets its fitted coordinates exactly, and is known as the fit set
    assert np.array_equal(xy(table).astype(np.float32), survey_map.embedding_)
    assert table["map_fit"].all() and table.meta["fit_on"] == "the mapped sources"
    assert table.colnames == ["id", "sky_centroid", "class", "flux", "map_x", "map_y",
                              "map_fit"]
    assert list(table["id"]) == list(survey.table["id"])
    assert "arbitrary units" in table["map_x"].info.description
    assert table.meta["n_components_used"] == 10 and table.meta["n_neighbors"] == 15
    assert table.meta["backbone"] == "synthetic" and "umap-learn" in table.meta["versions"]
    assert 0 < table.meta["explained_variance"] <= 1


def test_seeded_map_is_reproducible(survey, survey_map):
    table = umap_map(survey, color="class", seed=0)
    assert table["map_fit"].all()
    assert np.array_equal(xy(table).astype(np.float32), survey_map.embedding_)


def test_fit_on_survey_places_sample_near_its_class(survey, survey_map):
    sample = blobs([10, 10, 10], seed=2)             # new sources of the same three kinds
    table = umap_map(sample, color="class", fit_on=survey_map)
    assert not table["map_fit"].any()
    placed = xy(table)
    ref = np.asarray(survey_map.embedding_, dtype=float)
    ref_class = np.asarray(survey.table["class"])
    # 10 nearest fitted sources of every placed one: >= 90% of its class on average
    dist = np.linalg.norm(placed[:, None] - ref[None], axis=2)
    nearest = np.argsort(dist, axis=1)[:, :10]
    same = ref_class[nearest] == np.asarray(table["class"])[:, None]
    assert same.mean() >= 0.9
    # and each lands closer to its own class's centre in the map than to any other
    centres = np.array([ref[ref_class == c].mean(axis=0) for c in CLASSES])
    closest = CLASSES[np.argmin(np.linalg.norm(placed[:, None] - centres[None], axis=2),
                                axis=1)]
    assert np.array_equal(closest, np.asarray(table["class"]))
    # an Embedding as fit_on fits the same map (same seed) and draws it as the background
    again = umap_map(sample, color="class", fit_on=survey, path="sample.png")
    assert np.allclose(xy(again), placed, atol=1e-4)
    assert again.meta["n_fit"] == 300


def test_pca_variance_fraction_picks_components():
    # variances 100, 64, 36, 16 along four orthogonal directions, tiny noise elsewhere
    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.normal(size=(DIM, 4)))[0].T
    z = rng.normal(size=(80, 4))
    z = np.linalg.qr(z - z.mean(axis=0))[0] * np.sqrt(80) * [10, 8, 6, 4]  # uncorrelated
    features = z @ basis + rng.normal(0, 1e-3, (80, DIM))
    cumulative = np.cumsum([100, 64, 36, 16]) / 216      # 0.46, 0.76, 0.93, 1.0
    for fraction, expected in ((0.5, 2), (0.9, 3), (0.95, 4)):
        assert np.searchsorted(cumulative, fraction) + 1 == expected
        fmap = FeatureMap(n_components=fraction, normalize=None).fit(features)
        assert fmap.n_components_ == expected
        assert fmap.explained_variance_ratio_.sum() >= fraction
        assert fmap.reduce(features).shape == (80, expected)
    assert np.allclose(fmap.explained_variance_ratio_, [100 / 216, 64 / 216, 36 / 216,
                                                        16 / 216], atol=1e-4)
    # a number of components is capped at the data's size; None skips PCA
    assert FeatureMap(n_components=500, normalize=None).fit(features).n_components_ == DIM
    assert FeatureMap(n_components=None).fit(features[:20]).n_components_ == DIM
    for bad in (0, -1, 1.5, "ten", True):
        with pytest.raises(InputError, match="n_components"):
            FeatureMap(n_components=bad)


def test_balanced_map_fits_equal_classes():
    emb = blobs([200, 40, 20], seed=4)
    table = umap_map(emb, color="class", balance=True)
    fitted = table[table["map_fit"]]
    assert sorted(np.unique(fitted["class"], return_counts=True)[1]) == [20, 20, 20]
    assert np.all(np.isfinite(xy(table)))           # every source placed, fitted or not
    assert knn_purity(xy(table), table["class"], k=10) >= 0.9
    assert table.meta["balance"] is True and table.meta["n_fit"] == 60
    table = umap_map(emb, color="class", balance=30)
    counts = dict(zip(*np.unique(table[table["map_fit"]]["class"], return_counts=True)))
    assert counts == {"FRI": 30, "FRII": 20, "compact": 30}


def test_balanced_indices():
    labels = np.repeat(["a", "b", "c"], [50, 7, 12]).astype(object)
    labels[:5] = None                                  # no label: never chosen
    rows = balanced_indices(labels, seed=1)
    assert len(rows) == len(set(rows)) == 21 and np.all(np.diff(rows) > 0)
    assert np.all(rows >= 5)
    assert sorted(np.unique(labels[rows].astype(str), return_counts=True)[1]) == [7, 7, 7]
    assert np.array_equal(rows, balanced_indices(labels, seed=1))
    assert not np.array_equal(rows, balanced_indices(labels, seed=2))
    assert len(balanced_indices(labels, n_per_class=10)) == 10 + 7 + 10
    with pytest.raises(InputError, match="positive integer"):
        balanced_indices(labels, n_per_class=0)


def test_knn_purity_matches_brute_force():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(60, 3))
    labels = rng.integers(0, 3, 60)
    dist = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1)[:, :5]
    expected = np.mean(labels[nearest] == labels[:, None])
    assert knn_purity(points, labels, k=5) == pytest.approx(expected)
    # exact duplicates: the point itself is never counted as its own neighbour
    dup = np.repeat(points[:10], 3, axis=0)
    assert knn_purity(dup, np.repeat(np.arange(10), 3), k=2) == 1.0


def test_png_classes_and_colour_bar(survey, survey_map):
    from matplotlib.image import imread

    table = umap_map(survey, color="class", fit_on=survey_map, path="classes.png")
    image = imread("classes.png")
    assert image.shape == (560, 640, 4)
    assert image[..., :3].std() > 0.05                 # not a blank canvas
    fig = plot_map(table, color="class")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["FRI (100)", "FRII (100)", "compact (100)"]
    # a numeric Quantity column: colour bar labelled with its unit, log scale
    fig = plot_map(table, color="flux", log_color=True, path="flux.png")
    assert fig.axes[1].get_ylabel() == "flux [mJy]"
    assert imread("flux.png").shape == (560, 640, 4)
    # outputs are never overwritten silently
    with pytest.raises(InputError, match="exists"):
        plot_map(table, color="flux", path="flux.png")
    with pytest.raises(InputError, match="exists"):
        umap_map(survey, fit_on=survey_map, path="classes.png")
    plot_map(table, color="flux", path="flux.png", overwrite=True)


def test_bad_colour_column_names_it(survey, survey_map):
    with pytest.raises(InputError, match=r"No column 'morphology'.*id, sky_centroid, class, "
                                         r"flux"):
        umap_map(survey, color="morphology", fit_on=survey_map)
    with pytest.raises(InputError, match="'morphology'.*columns: id, kind"):
        umap_map(survey, labels=QTable({"id": [1], "kind": ["x"]}), color="morphology",
                 fit_on=survey_map)
    with pytest.raises(InputError, match="dimension 64.*dimension 8"):
        survey_map.transform(np.ones((3, 8)))
    with pytest.raises(InputError, match="NaN"):
        FeatureMap().fit(np.full((10, 4), np.nan))
    with pytest.raises(InputError, match="already fitted"):
        umap_map(survey, color="class", fit_on=survey_map, balance=True)


def test_labels_joined_on_id(survey, survey_map):
    # labels for a few sources only, in another order: the others get no label
    ids = np.asarray(survey.table["id"])[[250, 3, 120]]
    labels = QTable({"id": ids, "kind": ["c", "a", "b"]})
    table = umap_map(survey, labels=labels, label_column="kind", fit_on=survey_map,
                     path="labelled.png")
    assert table["kind"].mask.sum() == 297
    assert list(table["kind"][[3, 120, 250]]) == ["a", "b", "c"]
    fig = plot_map(table, color="kind")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["a (1)", "b (1)", "c (1)", "no label (297)"]


@pytest.mark.slow
def test_cli_round_trip(survey, survey_map, capsys):
    from matplotlib.image import imread

    survey.write("survey.fits")
    sample = blobs([5, 5, 5], seed=6)
    sample.write("sample.fits")
    write_table(QTable({"id": sample.table["id"], "fr": sample.table["class"]}), "labels.ecsv")
    open("umap.png", "w").close()
    args = ["map", "survey.fits", "--color", "class", "-o", "umap.png", "--table", "umap.ecsv",
            "-q"]
    assert main(args) == 2                             # refuses to overwrite, unless told
    assert "'umap.png' exists" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert imread("umap.png").shape == (560, 640, 4)
    table = read_table("umap.ecsv")
    assert np.array_equal(xy(table).astype(np.float32), survey_map.embedding_)
    assert table["sky_centroid"].separation(survey.table["sky_centroid"]).max() < 1e-6 * u.arcsec
    assert list(table["class"]) == list(survey.table["class"]) and table["map_fit"].all()
    # place a labelled sample in the survey's map; labels from a table joined on id
    assert main(["map", "sample.fits", "--fit-on", "survey.fits", "--labels", "labels.ecsv",
                 "--label-column", "fr", "--n-components", "0.9", "-o", "sample.png",
                 "--table", "sample.fits.ecsv", "-q"]) == 0
    placed = read_table("sample.fits.ecsv")
    assert list(placed["fr"]) == list(sample.table["class"]) and not placed["map_fit"].any()
    assert placed.meta["n_components"] == 0.9 and placed.meta["n_fit"] == 300
    # a bad colour column: exit code 2 and a message that names it and lists the columns
    assert main(["map", "survey.fits", "--color", "nope", "-o", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "class" in err and "flux" in err
