# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of astrofmtools.embed similarity search: exactness, queries, pictures, CLI."""

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("matplotlib")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.cli import main  # noqa: E402
from astrofmtools.cutouts import CutoutStack, make_cutouts  # noqa: E402
from astrofmtools.datasets import make_radio_field  # noqa: E402
from astrofmtools.embed import Embedding, SimilarityIndex, embed, has_faiss, similar  # noqa: E402

torch.set_num_threads(1)


def brute_force(features, queries, k, exclude=None):
    """Top-k cosine neighbours in float64, by full sort."""
    f = np.asarray(features, float)
    q = np.asarray(queries, float)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    sims = q @ f.T
    if exclude is not None:
        sims[np.arange(len(q)), exclude] = -np.inf
    rows = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, rows, axis=1), rows


@pytest.fixture(scope="module")
def field_stack():
    """17 cutouts of a synthetic radio field, the 4th duplicated as an 18th (id 999)."""
    image, truth = make_radio_field(shape=(320, 320), n_compact=10, n_extended=7,
                                    n_artefacts=0, seed=3)
    stack = make_cutouts(image, truth, size=32)
    stack = CutoutStack.concatenate([stack, stack[[3]]])
    stack.table["id"][-1] = 999
    return stack


@pytest.fixture(scope="module")
def field_embedding(field_stack):
    return embed(field_stack, model="efficientnet_lite0", device="cpu", cache=False,
                 preprocess={"input_size": 64})


@pytest.mark.parametrize("chunk_size", [97, 1000, 5000])
def test_search_agrees_with_brute_force(chunk_size):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1000, 24)).astype(np.float32)
    queries = rng.normal(size=(7, 24))
    index = SimilarityIndex(features, backend="numpy", chunk_size=chunk_size)
    for k in (1, 10, 150):  # 150 > 97: the running top-k spans chunks
        sims, rows = index.search(queries, k=k)
        ref_sims, ref_rows = brute_force(features, queries, k)
        assert rows.shape == (7, k)
        np.testing.assert_array_equal(rows, ref_rows)
        np.testing.assert_allclose(sims, ref_sims, atol=2e-6)
    # the nearest neighbour of a vector lying across a chunk boundary (row 96/97)
    sims, rows = index.search(features[[96, 97]], k=1)
    assert rows[:, 0].tolist() == [96, 97]
    np.testing.assert_allclose(sims, 1, atol=1e-6)
    # many queries at once give what one at a time does
    one = np.concatenate([index.search(q, k=5)[1] for q in queries])
    np.testing.assert_array_equal(index.search(queries, k=5)[1], one)


def test_search_excludes_the_query_row():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 8))
    index = SimilarityIndex(features, backend="numpy", chunk_size=64)
    rows = np.array([0, 63, 64, 299])
    sims, found = index.search(features[rows], k=5, exclude=rows)
    ref_sims, ref_rows = brute_force(features, features[rows], 5, exclude=rows)
    np.testing.assert_array_equal(found, ref_rows)
    np.testing.assert_allclose(sims, ref_sims, atol=2e-6)
    assert not np.any(found == rows[:, None])
    # k larger than what is left is capped; zero vectors have similarity 0
    features[5] = 0
    sims, found = SimilarityIndex(features).search(features[[1]], k=1000, exclude=[1])
    assert found.shape == (1, 299) and 1 not in found
    assert sims[0, list(found[0]).index(5)] == 0


@pytest.mark.skipif(not has_faiss(), reason="faiss is not installed")
def test_faiss_gives_the_numpy_results():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(5000, 32)).astype(np.float32)
    queries = rng.normal(size=(20, 32))
    s_np, r_np = SimilarityIndex(features, backend="numpy", chunk_size=999).search(queries, 12)
    s_fa, r_fa = SimilarityIndex(features, backend="faiss").search(queries, 12)
    np.testing.assert_array_equal(r_fa, r_np)
    np.testing.assert_allclose(s_fa, s_np, atol=2e-6)
    emb = Embedding(features)
    hits_np = similar(emb, query=[5, 17], k=4, backend="numpy")
    hits_fa = similar(emb, query=[5, 17], k=4, backend="faiss")
    assert hits_np["id"].tolist() == hits_fa["id"].tolist()


def test_bad_inputs():
    features = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(InputError, match="k must be a positive integer"):
        similar(features, query=1, k=0)
    with pytest.raises(InputError, match="Unknown backend"):
        SimilarityIndex(features, backend="annoy")
    features[3, 1] = np.nan
    with pytest.raises(InputError, match=r"NaN or infinite values \(rows 3\)"):
        SimilarityIndex(features)
    with pytest.raises(InputError, match="No source has id = 11"):
        similar(np.ones((10, 4)), query=11)
    with pytest.raises(InputError, match="needs sky positions"):
        similar(np.ones((10, 4)), query=SkyCoord(1, 2, unit="deg"))


def test_query_itself_then_its_duplicate(field_stack, field_embedding):
    emb = field_embedding
    query_id = int(field_stack.table["id"][3])
    hits = similar(emb, query=query_id, k=5)
    assert len(hits) == 6
    assert hits["rank"].tolist() == [0, 1, 2, 3, 4, 5]
    assert hits["id"][0] == query_id and hits["row"][0] == 3
    assert hits["id"][1] == 999 and hits["row"][1] == len(emb) - 1
    assert abs(hits["similarity"][0] - 1) < 1e-6
    assert abs(hits["similarity"][1] - 1) < 1e-6
    assert np.all(np.diff(hits["similarity"][1:]) <= 0)
    assert hits["similarity"][2] < 1 - 1e-3  # the others are not copies
    # the input columns are kept, the query recorded
    assert {"sky_centroid", "kind", "flux", "cutout_x0"} <= set(hits.colnames)
    assert hits.meta["queries"] == [{"kind": "id", "id": query_id, "row": 3}]
    assert hits.meta["backbone"] == "efficientnet_lite0" and hits.meta["k"] == 5
    # the same numbers as a brute-force cosine over the features
    ref_sims, ref_rows = brute_force(emb.features, emb.features[[3]], 5, exclude=[3])
    assert hits["row"][1:].tolist() == ref_rows[0].tolist()
    np.testing.assert_allclose(hits["similarity"][1:], ref_sims[0], atol=1e-6)
    without = similar(emb, query=query_id, k=5, include_query=False)
    assert without["rank"].tolist() == [1, 2, 3, 4, 5]
    assert without["row"].tolist() == hits["row"][1:].tolist()


def test_several_queries_at_once(field_embedding):
    emb = field_embedding
    ids = [int(i) for i in emb.table["id"][[0, 5, 9]]]
    hits = similar(emb, query=ids, k=3)
    assert len(hits) == 12 and hits["query"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for j, query_id in enumerate(ids):
        one = similar(emb, query=query_id, k=3)
        part = hits[hits["query"] == j]
        for a, b in zip(part["id"].tolist(), one["id"].tolist()):
            # the fixture's cutout 999 is a copy of cutout 4: their exact tie may break
            # either way between a batched and a single search
            assert a == b or {a, b} == {4, 999}
        np.testing.assert_allclose(part["similarity"], one["similarity"], atol=1e-7)


def test_query_by_sky_position(field_embedding):
    emb = field_embedding
    j = 7
    target = emb.table["sky_centroid"][j]
    position = target.spherical_offsets_by(1.5 * u.arcsec, -1.0 * u.arcsec)
    hits = similar(emb, query=position, k=2)
    assert hits["row"][0] == j and hits["id"][0] == emb.table["id"][j]
    record = hits.meta["queries"][0]
    assert record["kind"] == "position" and record["row"] == j
    assert record["separation_arcsec"] == pytest.approx(np.hypot(1.5, 1.0), rel=1e-3)
    with pytest.raises(InputError, match="No source within 1 arcsec"):
        similar(emb, query=position, k=2, max_separation=1 * u.arcsec)
    # several positions, and ra/dec columns instead of a SkyCoord column
    table = QTable({"id": emb.table["id"], "ra": emb.table["sky_centroid"].ra.deg,
                    "dec": emb.table["sky_centroid"].dec.deg})
    plain = Embedding(emb.features, table)
    both = similar(plain, query=emb.table["sky_centroid"][[2, 11]], k=1)
    assert both["rank"].tolist() == [0, 1, 0, 1]
    assert both["row"][both["rank"] == 0].tolist() == [2, 11]


def test_query_by_new_image_equals_its_row(field_stack, field_embedding):
    emb = field_embedding
    row = 5
    by_row = similar(emb, query=int(emb.table["id"][row]), k=4)
    # the backbone is rebuilt from emb.meta (name, weights, pooling, preprocessing)
    by_image = similar(emb, query=field_stack.data[row], k=5)
    assert by_image["rank"].tolist() == [1, 2, 3, 4, 5]
    assert by_image["id"].tolist() == by_row["id"].tolist()
    np.testing.assert_allclose(by_image["similarity"], by_row["similarity"], atol=1e-5)
    assert by_image.meta["queries"] == [{"kind": "image", "index": 0}]
    # a stack of two images: two queries
    two = similar(emb, query=field_stack[[1, 2]], k=1)
    assert two["row"].tolist() == [1, 2]


def test_random_weights_need_the_model():
    rng = np.random.default_rng(0)
    cutouts = rng.normal(size=(4, 32, 32))
    emb = embed(cutouts, model="resnet18", weights="random", device="cpu", cache=False,
                preprocess={"input_size": 64})
    with pytest.raises(InputError, match="randomly initialised"):
        similar(emb, query=cutouts[0])


def test_png_grid(field_stack, field_embedding, tmp_path):
    from matplotlib.image import imread
    hits = similar(field_embedding, query=[int(field_stack.table["id"][3]), 999], k=4,
                   output=tmp_path / "similar.png")
    png = imread(tmp_path / "similar.png")
    assert png.shape[:2] == (2 * 180, 5 * 150)      # 2 rows of query + 4 neighbours
    assert png[..., :3].std() > 0.05
    assert len(hits) == 10
    with pytest.raises(InputError, match="exists"):
        similar(field_embedding, query=999, output=tmp_path / "similar.png")
    features_only = Embedding(field_embedding.features, field_embedding.table)
    with pytest.raises(InputError, match="needs their cutouts"):
        similar(features_only, query=999, output=tmp_path / "other.png")
    similar(features_only, query=999, k=2, cutouts=field_stack, output=tmp_path / "other.png")
    assert (tmp_path / "other.png").stat().st_size > 1000


@pytest.mark.slow
def test_cli_round_trip(field_stack, tmp_path, capsys):
    from astrofmtools.catalog import read_table
    field_stack.write(tmp_path / "cutouts.fits")
    assert main(["embed", str(tmp_path / "cutouts.fits"), "-o", str(tmp_path / "f.fits"),
                 "-q"]) == 0
    query_id = int(field_stack.table["id"][3])
    code = main(["similar", str(tmp_path / "f.fits"), "--query", str(query_id), "-k", "3",
                 "-o", str(tmp_path / "similar.png"), "--table", str(tmp_path / "s.ecsv"),
                 "-q"])
    assert code == 0
    table = read_table(tmp_path / "s.ecsv")
    assert table["id"].tolist()[:2] == [query_id, 999]
    assert table["rank"].tolist() == [0, 1, 2, 3]
    assert (tmp_path / "similar.png").stat().st_size > 1000
    # by position, with the cutouts named
    sky = field_stack.table["sky_centroid"][8]
    code = main(["similar", str(tmp_path / "f.fits"), "--position",
                 f"{sky.ra.deg} {sky.dec.deg}", "-k", "2", "--cutouts",
                 str(tmp_path / "cutouts.fits"), "-o", str(tmp_path / "pos.png"), "--table",
                 str(tmp_path / "pos.ecsv"), "-q"])
    assert code == 0
    assert read_table(tmp_path / "pos.ecsv")["id"][0] == field_stack.table["id"][8]
    # by a new image (a FITS file), embedded as the features file records
    from astropy.io import fits
    fits.PrimaryHDU(field_stack.data[3]).writeto(tmp_path / "new.fits")
    code = main(["similar", str(tmp_path / "f.fits"), "--image", str(tmp_path / "new.fits"),
                 "-k", "2", "-o", str(tmp_path / "img.png"), "--table", str(tmp_path / "i.ecsv"),
                 "-q"])
    assert code == 0
    assert sorted(read_table(tmp_path / "i.ecsv")["id"].tolist()) == sorted([query_id, 999])
    capsys.readouterr()
    code = main(["similar", str(tmp_path / "f.fits"), "--query", "12345", "-o",
                 str(tmp_path / "x.png")])
    assert code == 2
    assert "No source has id = 12345" in capsys.readouterr().err
    assert main(["similar", str(tmp_path / "f.fits"), "-o", str(tmp_path / "x.png")]) == 2
    assert "one query" in capsys.readouterr().err
