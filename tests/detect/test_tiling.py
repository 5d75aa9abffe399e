# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Tests of astrofmtools.detect.predict_tiled: tiled detection over a mosaic
returns exactly what one pass over the whole image returns.

The detector is analytic (threshold, connected regions, their boxes, score
= peak), so it is translation invariant and the tiled and one-shot results
can be compared box for box.
"""

import numpy as np
import pytest
import astropy.units as u
from astropy.modeling.models import Gaussian2D
from scipy import ndimage

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from astrofmtools.exceptions import InputError, MissingFileError  # noqa: E402
from astrofmtools.catalog import read_regions, write_regions  # noqa: E402
from astrofmtools.datasets import make_radio_field  # noqa: E402
from astrofmtools.detect import DETECTION_COLUMNS, predict_tiled  # noqa: E402
from astrofmtools.io import SkyImage, tile_grid, write_image  # noqa: E402

torch.set_num_threads(1)

TILE, OVERLAP = 128, 32
NOISE = 1.5e-4
SIGMA = 3.0 / 2.3548  # beam FWHM 5.4" on 1.8" pixels
#: extra sources (x, y) placed across tile edges, core cuts and a four-tile corner
STRADDLERS = [(128.0, 40.0), (112.0, 150.3), (127.6, 128.4), (224.2, 60.0),
              (319.5, 200.0), (300.0, 172.0), (200.0, 223.8), (40.0, 96.0)]

EXPECTED = list(DETECTION_COLUMNS)


class BlobDetector:
    """Boxes of the 8-connected regions above a threshold; score = peak; label 2 if wide."""

    def __init__(self, threshold, tensors=False):
        self.threshold = threshold
        self.tensors = tensors
        self.tiles = []

    def __call__(self, tiles):
        out = []
        for t in tiles:
            assert t.dtype == np.float32 and t.ndim == 2
            self.tiles.append(t.shape)
            mask = np.where(np.isfinite(t), t, -np.inf) > self.threshold
            lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
            objects = ndimage.find_objects(lab)
            boxes = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in objects],
                             dtype=np.float32).reshape(-1, 4)
            scores = np.asarray(ndimage.maximum(t, lab, np.arange(1, n + 1)), np.float32)
            labels = np.where(boxes[:, 2] - boxes[:, 0] > 6, 2, 1).astype(np.int64)
            if self.tensors:
                boxes, scores, labels = (torch.from_numpy(v) for v in (boxes, scores, labels))
            out.append((boxes, scores, labels))
        return out


def one_shot(data, detector):
    boxes, scores, labels = detector([np.asarray(data, np.float32)])[0]
    return np.asarray(boxes, float), np.asarray(scores, float), np.asarray(labels)


def table_boxes(table):
    return np.column_stack([table["bbox_xmin"], table["bbox_ymin"],
                            table["bbox_xmax"] + 1, table["bbox_ymax"] + 1])


def assert_same(table, boxes, scores):
    """Same boxes (to 1e-6 pixel) and scores, in any order."""
    assert len(table) == len(boxes)
    got = table_boxes(table)
    a = np.lexsort((got[:, 0], got[:, 1]))
    b = np.lexsort((boxes[:, 0], boxes[:, 1]))
    np.testing.assert_allclose(got[a], boxes[b], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(table["score"])[a], scores[b], rtol=1e-7)


@pytest.fixture(scope="module")
def field():
    image, truth = make_radio_field(shape=(300, 420), n_compact=70, n_extended=0,
                                    n_artefacts=0, snr_range=(8, 300), seed=3)
    data = image.data.copy()
    yy, xx = np.mgrid[:data.shape[0], :data.shape[1]]
    for x, y in STRADDLERS:
        d = np.hypot(np.asarray(truth["x"]) - x, np.asarray(truth["y"]) - y)
        assert d.min() > 8, "an extra source falls on a truth source; move it"
        data += Gaussian2D.evaluate(xx, yy, 60 * NOISE, x, y, SIGMA, SIGMA, 0).astype(
            np.float32)
    image = SkyImage(data, wcs=image.wcs, unit=image.unit, beam=image.beam,
                     header=image.header, source="test field")
    return image, truth


def test_tiled_equals_one_shot_with_straddling_sources(field):
    image, truth = field
    detector = BlobDetector(6 * NOISE)
    found = predict_tiled(image, detector, tile=TILE, overlap=OVERLAP, batch_size=3)
    boxes, scores, _ = one_shot(image.data, detector)
    assert len(found) > 60
    assert_same(found, boxes, scores)
    assert found.colnames == EXPECTED
    assert found["id"].tolist() == list(range(1, len(found) + 1))
    assert np.all(np.diff(found["score"]) <= 0)  # by decreasing score
    # the tiled pass saw only tiles, never the whole image
    grid = tile_grid(image.shape, TILE, OVERLAP)
    assert len(detector.tiles) == 1 + len(grid) == 16
    assert all(s == (TILE, TILE) for s in detector.tiles[:-1])
    # many detections cross a tile edge: each of them is found once, whole
    cut = 0
    got = table_boxes(found)
    for (ys, xs), _ in grid:
        inter = ((got[:, 0] < xs.stop) & (got[:, 2] > xs.start)
                 & (got[:, 1] < ys.stop) & (got[:, 3] > ys.start))
        inside = ((got[:, 0] >= xs.start) & (got[:, 2] <= xs.stop)
                  & (got[:, 1] >= ys.start) & (got[:, 3] <= ys.stop))
        cut += np.count_nonzero(inter & ~inside)
    assert cut >= 15
    for x, y in STRADDLERS:
        d = np.hypot(found["x"] - x, found["y"] - y)
        assert np.count_nonzero(d < 3) == 1
    # each detection comes from a tile whose core (grown by <= 8 px inside the tile) holds it
    for row in found:
        (ys, xs), (cy, cx) = grid[row["tile"]]
        assert cx.start - 8 <= row["x"] + 0.5 < cx.stop + 8
        assert cy.start - 8 <= row["y"] + 0.5 < cy.stop + 8
    assert found.meta["tile"] == TILE and found.meta["overlap"] == OVERLAP
    assert found.meta["n_tiles"] == 15 and found.meta["image"] == "test field"
    assert "torch" in found.meta["versions"]
    for name in found.colnames:
        assert found[name].info.description


def test_sky_coordinates_match_truth(field):
    image, truth = field
    found = predict_tiled(image, BlobDetector(6 * NOISE), tile=TILE, overlap=OVERLAP)
    bright = truth[truth["snr"] >= 15]
    assert len(bright) > 40
    idx, sep, _ = bright["sky_centroid"].match_to_catalog_sky(found["sky_centroid"])
    # every bright source found once; a box centre is within half a pixel of the
    # thresholded blob's centre on each axis, so within 1 pixel (1.8") of the truth
    sep = sep.to_value(u.arcsec)
    assert sep.max() < 1.8 and np.median(sep) < 0.35 * 1.8
    assert len(np.unique(idx)) == len(bright)
    # and without a systematic shift (an off-by-one pixel would show here)
    dra = (found["ra"][idx] - bright["ra"]) * np.cos(bright["dec"])
    ddec = found["dec"][idx] - bright["dec"]
    assert abs(np.mean(dra).to_value(u.arcsec)) < 0.1 * 1.8
    assert abs(np.mean(ddec).to_value(u.arcsec)) < 0.1 * 1.8
    sky = image.wcs.pixel_to_world(found["x"], found["y"])
    assert np.all(found["sky_centroid"].separation(sky).to_value(u.arcsec) < 1e-6)
    np.testing.assert_allclose(found["ra"].to_value(u.deg), found["sky_centroid"].ra.deg)
    assert found["ra"].unit == u.deg


def test_regions_read_back_at_the_right_pixels(field):
    image, _ = field
    found = predict_tiled(image, BlobDetector(6 * NOISE), tile=TILE, overlap=OVERLAP)
    write_regions(found, "found.reg", shape="box")
    back = read_regions("found.reg")
    assert set(back["shape"]) == {"box"} and len(back) == len(found)
    np.testing.assert_allclose(back["x"].value, found["x"], atol=1e-6)
    np.testing.assert_allclose(back["y"].value, found["y"], atol=1e-6)
    np.testing.assert_allclose(back["width"].value, found["bbox_xmax"] - found["bbox_xmin"] + 1,
                               atol=1e-6)
    np.testing.assert_allclose(back["height"].value,
                               found["bbox_ymax"] - found["bbox_ymin"] + 1, atol=1e-6)
    write_regions(found, "found_sky.reg", shape="box", wcs=image.wcs)
    sky = read_regions("found_sky.reg", wcs=image.wcs)
    np.testing.assert_allclose(sky["x"].value, found["x"], atol=1e-4)
    np.testing.assert_allclose(sky["y"].value, found["y"], atol=1e-4)


def test_file_is_read_tile_by_tile(field):
    image, _ = field
    write_image(image, "mosaic.fits")
    detector = BlobDetector(6 * NOISE)
    from_file = predict_tiled("mosaic.fits", detector, tile=TILE, overlap=OVERLAP)
    in_memory = predict_tiled(image, BlobDetector(6 * NOISE), tile=TILE, overlap=OVERLAP)
    assert_same(from_file, table_boxes(in_memory), np.asarray(in_memory["score"]))
    assert "mosaic.fits" in from_file.meta["image"]
    assert max(s[0] * s[1] for s in detector.tiles) == TILE * TILE


def test_tensors_labels_and_names(field):
    image, _ = field
    names = ["background", "compact", "wide"]
    found = predict_tiled(image, BlobDetector(3 * NOISE, tensors=True), tile=TILE,
                          overlap=OVERLAP, labels=names)
    boxes, scores, labels = one_shot(image.data, BlobDetector(3 * NOISE))
    assert_same(found, boxes, scores)
    assert set(found["label_id"]) == {1, 2}
    np.testing.assert_array_equal(found["label"], np.array(names)[found["label_id"]])
    assert found.meta["labels"] == names


def test_global_nms_removes_duplicates_across_tiles():
    """Two tiles both keep a box for one object; the NMS keeps the better one."""
    data = np.zeros((128, 240), np.float32)  # tiles x 0-128 and 112-240, core cut at 120
    obj = np.array([115.0, 40.0, 125.0, 50.0])  # centred on the core cut

    def detector(tiles):
        out = []
        for k, t in enumerate(tiles):
            x0 = 0 if k == 0 else 112
            shift = -0.5 if k == 0 else 0.5  # each tile sees it slightly differently
            box = obj + [shift - x0, 0, shift - x0, 0]
            out.append((box[None], np.array([0.9 - 0.1 * k]), np.array([1 + k])))
        return out

    per_class = predict_tiled((data, None), detector, tile=128, overlap=16)
    assert len(per_class) == 2  # different classes: both kept
    agnostic = predict_tiled((data, None), detector, tile=128, overlap=16,
                             class_agnostic=True)
    assert len(agnostic) == 1 and agnostic["score"][0] == 0.9 and agnostic["tile"][0] == 0
    np.testing.assert_allclose(table_boxes(agnostic)[0], obj - [0.5, 0, 0.5, 0])

    def same_class(tiles):
        return [(b, s, np.ones_like(lab)) for b, s, lab in detector(tiles)]

    deduplicated = predict_tiled((data, None), same_class, tile=128, overlap=16)
    assert len(deduplicated) == 1
    loose = predict_tiled((data, None), same_class, tile=128, overlap=16, iou_threshold=0.9)
    assert len(loose) == 2  # IoU 9/11 = 0.82 < 0.9


def test_nan_tiles_are_skipped(field):
    image, _ = field
    data = image.data.copy()
    data[160:, :] = np.nan  # the last row of tiles (y 172-300) has no data at all
    data[:20, 300:] = np.nan
    nan_image = SkyImage(data, wcs=image.wcs, source="with blanks")
    detector = BlobDetector(6 * NOISE)
    found = predict_tiled(nan_image, detector, tile=TILE, overlap=OVERLAP)
    assert len(detector.tiles) == 10  # 15 tiles, 5 blank
    boxes, scores, _ = one_shot(data, BlobDetector(6 * NOISE))
    assert_same(found, boxes, scores)
    assert np.all(found["y"] < 160)


def test_image_smaller_than_a_tile(field):
    image, _ = field
    small = image.data[:100, :90]
    detector = BlobDetector(6 * NOISE)
    found = predict_tiled((small, image.wcs[:100, :90]), detector, tile=TILE, overlap=OVERLAP)
    assert detector.tiles == [(100, 90)]
    boxes, scores, _ = one_shot(small, BlobDetector(6 * NOISE))
    assert len(found) >= 5
    assert_same(found, boxes, scores)
    assert set(found["tile"]) == {0} and found.meta["n_tiles"] == 1


def test_no_detections_gives_an_empty_table(field):
    image, _ = field
    found = predict_tiled(image, BlobDetector(1e6), tile=TILE, overlap=OVERLAP)
    assert len(found) == 0
    assert found.colnames == EXPECTED
    assert found["sky_centroid"].shape == (0,)
    no_wcs = predict_tiled((image.data, None), BlobDetector(1e6), tile=TILE, overlap=OVERLAP,
                           labels=["bg", "source"])
    assert no_wcs.colnames == [c for c in EXPECTED if c not in ("sky_centroid", "ra", "dec")]
    assert no_wcs["label"].dtype.kind == "U"


def test_bad_arguments():
    data = np.ones((64, 64), np.float32)
    ok = BlobDetector(0.5)
    for kwargs in ({"tile": 0}, {"tile": 12.5}, {"tile": True}, {"overlap": 512},
                   {"overlap": -1}, {"iou_threshold": 0}, {"iou_threshold": 1.5},
                   {"iou_threshold": "high"}, {"batch_size": 0}, {"labels": "abc"},
                   {"labels": ["background"]}):
        with pytest.raises(InputError):
            predict_tiled((data, None), ok, **kwargs)
    with pytest.raises(InputError, match="callable"):
        predict_tiled((data, None), "detector")
    with pytest.raises(MissingFileError, match="nothere.fits"):
        predict_tiled("nothere.fits", ok)
    with pytest.raises(InputError, match="2-D"):
        predict_tiled(SkyImage(np.ones((3, 64, 64))), ok)
    with pytest.raises(InputError, match="list of 1"):
        predict_tiled((data, None), lambda tiles: [])
    with pytest.raises(InputError, match=r"shape \(1, 3\)"):
        predict_tiled((data, None), lambda tiles: [(np.zeros((1, 3)), [1.0], [1])])
    with pytest.raises(InputError, match="labels must be integers >= 1"):
        predict_tiled((data, None), lambda tiles: [(np.array([[0, 0, 4, 4]]), [1.0], [0])])
    with pytest.raises(InputError, match="must match"):
        predict_tiled((data, None), lambda tiles: [(np.array([[0, 0, 4, 4]]), [1.0, 2.0],
                                                    [1])])
    with pytest.raises(InputError, match="class number 3"):
        predict_tiled((data, None), lambda tiles: [(np.array([[0, 0, 4, 4]]), [1.0], [3])],
                      labels=["bg", "a", "b"])
