"""The one tile primitive: plan, reader, ownership, map (astrofmtools.io.tiles)."""

import concurrent.futures
import threading

import numpy as np
import pytest
from astropy.io import fits

from astrofmtools import InputError
from astrofmtools.background import estimate_background
from astrofmtools.datasets import make_radio_field, make_wcs
from astrofmtools.io import (SCHEDULERS, FitsPixels, SkyImage, Tile, load_image, map_tiles, owned,
                             plan_tiles, read_tile, register_scheduler, tile_grid)
from astrofmtools.io import tiles as io_tiles
from astrofmtools.sources import core as sources_core
from astrofmtools.sources import tiled as sources_tiled
from astrofmtools.sources import find_sources

TILE, OVERLAP = 300, 100


# --- plan ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(50, 50), (128, 300), (129, 257), (700, 760), (1000, 33)])
@pytest.mark.parametrize("tile_size, overlap",
                         [(128, 32), (100, 0),
                          pytest.param(64, 63, marks=pytest.mark.slow)])  # 13 s in all
def test_cores_cover_the_image_exactly_once(shape, tile_size, overlap):
    tiles = plan_tiles(shape, tile_size, overlap)
    covered = np.zeros(shape, int)
    spanned = np.zeros(shape, int)
    for k, tile in enumerate(tiles):
        assert tile.index == k and tile.data is None
        covered[tile.core] += 1
        spanned[tile.slices] += 1
        for s, c, n in zip(tile.slices, tile.core, shape):
            assert 0 <= s.start <= c.start < c.stop <= s.stop <= n
            assert s.stop - s.start == min(tile_size, n)  # every tile full size
    assert (covered == 1).all()
    assert spanned.min() >= 1
    # the same grid as tile_grid, which other code imports
    assert [(t.slices, t.core) for t in tiles] == tile_grid(shape, tile_size, overlap)


def test_plan_numbers():
    tiles = plan_tiles((200, 300), tile_size=128, overlap=16)
    assert len(tiles) == 6
    xs = [(t.slices[1].start, t.slices[1].stop) for t in tiles[:3]]
    cores = [(t.core[1].start, t.core[1].stop) for t in tiles[:3]]
    assert xs == [(0, 128), (112, 240), (172, 300)]
    assert cores == [(0, 120), (120, 206), (206, 300)]  # cuts in the middle of the overlaps
    assert [(t.core[0].start, t.core[0].stop) for t in tiles[::3]] == [(0, 100), (100, 200)]


@pytest.mark.parametrize("kwargs", [dict(tile_size=0), dict(overlap=-1), dict(overlap=128),
                                    dict(tile_size=12.5)])
def test_bad_plans(kwargs):
    settings = {"tile_size": 128, "overlap": 16, **kwargs}
    with pytest.raises(InputError, match="tile_size"):
        plan_tiles((200, 300), **settings)
    with pytest.raises(InputError, match="non-empty 2-D"):
        plan_tiles((0, 300), 128, 16)


# --- ownership ---------------------------------------------------------------------------

def test_each_position_belongs_to_exactly_one_tile():
    shape = (257, 390)
    tiles = plan_tiles(shape, tile_size=100, overlap=30)
    rng = np.random.default_rng(4)
    x = rng.uniform(-0.5, shape[1] - 0.5, 20000)
    y = rng.uniform(-0.5, shape[0] - 0.5, 20000)
    # and positions on and next to every core boundary and image edge
    cuts = sorted({c for t in tiles for c in (t.core[1].start, t.core[1].stop)})
    special = np.array([c - 0.5 + d for c in cuts for d in (-1e-9, 0.0, 1e-9)])
    special = special[(special >= -0.5) & (special < shape[1] - 0.5)]
    x = np.concatenate([x, special, rng.uniform(-0.5, shape[1] - 0.5, special.size)])
    y = np.concatenate([y, rng.uniform(-0.5, shape[0] - 0.5, special.size),
                        np.resize([c - 0.5 for c in cuts if 0 < c < shape[0]], special.size)])
    owners = np.array([owned(t, x, y) for t in tiles])
    assert (owners.sum(axis=0) == 1).all()
    # the owner is the tile whose core holds the pixel the position falls in
    px, py = np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int)
    for k, tile in enumerate(tiles):
        (cy, cx) = tile.core
        inside = (px >= cx.start) & (px < cx.stop) & (py >= cy.start) & (py < cy.stop)
        np.testing.assert_array_equal(owners[k], inside)
    cut = tiles[0].core[1].stop
    assert cut == 85  # tiles x 0-100 and 70-170: the cut in the middle of the overlap
    assert owned(tiles[0], cut - 0.51, 0.0) and not owned(tiles[0], cut - 0.5, 0.0)
    assert owned(tiles[1], cut - 0.5, 0.0) and not owned(tiles[1], cut - 0.51, 0.0)


def test_ownership_margin_grows_inner_sides_only():
    tiles = plan_tiles((100, 250), tile_size=100, overlap=20)  # x cores 0-90, 90-165, 165-250
    middle = tiles[1]
    x = np.array([83.4, 84.5, 90.0, 164.0, 170.4, 170.5])
    assert owned(middle, x, 50.0).tolist() == [False, False, True, True, False, False]
    # grown to pixels 84-170
    assert owned(middle, x, 50.0, margin=6).tolist() == [False, True, True, True, True, False]
    # never beyond the tile (pixels 80-179), and not past the image edge
    assert not owned(middle, 79.4, 50.0, margin=50) and owned(middle, 79.5, 50.0, margin=50)
    assert owned(middle, 179.4, 50.0, margin=50) and not owned(middle, 179.5, 50.0, margin=50)
    assert not owned(tiles[0], -0.6, 50.0, margin=5)


# --- reader ------------------------------------------------------------------------------

def test_reader_memory_map_wcs_and_mask():
    data = np.random.default_rng(2).normal(size=(300, 410)).astype(">f4")
    wcs = make_wcs((300, 410))
    fits.PrimaryHDU(data, header=wcs.to_header()).writeto("big.fits")
    image = load_image("big.fits", memmap=True)
    assert isinstance(image.data, FitsPixels) and image.mask is None
    tile = plan_tiles(image.shape, 128, 24)[4]
    read = read_tile(image, tile)
    assert read.index == tile.index and read.slices == tile.slices
    assert read.data.dtype == np.float32 and read.data.dtype.isnative
    np.testing.assert_array_equal(read.data, data[tile.slices])
    read.data[:] = 0  # a copy: the image is left alone
    assert np.array_equal(np.asarray(image.data[tile.slices]), data[tile.slices])
    y0, x0 = read.origin
    a = read.wcs.pixel_to_world(5.0, 7.0)
    assert a.separation(image.wcs.pixel_to_world(5.0 + x0, 7.0 + y0)).arcsec < 1e-8
    assert read.wcs is not image.wcs and read.wcs.wcs is not image.wcs.wcs
    # the same from the file name, a plain memory map and integer pixels
    np.testing.assert_array_equal(read_tile("big.fits", tile).data, data[tile.slices])
    mm = np.memmap("raw.dat", dtype=">i2", mode="w+", shape=(300, 410))
    mm[:] = 7
    mm.flush()
    raw = read_tile(np.memmap("raw.dat", dtype=">i2", mode="r", shape=(300, 410)), tile)
    assert raw.data.dtype == np.float32 and raw.wcs is None and (raw.data == 7).all()
    assert read_tile(data, tile, dtype=np.float64).data.dtype == np.float64
    # the no-data mask travels with the pixels
    masked = SkyImage(data.astype(np.float32), mask=np.arange(data.size).reshape(data.shape) % 2
                      == 0)
    np.testing.assert_array_equal(read_tile(masked, tile).mask, masked.mask[tile.slices])


# --- map ---------------------------------------------------------------------------------

def _core_sum(tile):
    (y0, x0), (cy, cx) = tile.origin, tile.core
    return float(tile.data[cy.start - y0:cy.stop - y0, cx.start - x0:cx.stop - x0].sum())


def test_map_tiles_in_tile_order_on_every_scheduler():
    data = np.random.default_rng(0).normal(size=(333, 401))
    tiles = plan_tiles(data.shape, 64, 16)
    serial = map_tiles(_core_sum, data, tiles)
    assert len(serial) == len(tiles) == 63
    np.testing.assert_allclose(sum(serial), data.sum())
    threads_seen = set()

    def where(tile):
        threads_seen.add(threading.current_thread().name)
        return _core_sum(tile)

    assert map_tiles(where, data, tiles, scheduler="threads", workers=3) == serial
    assert len(threads_seen) > 1 and all(n.startswith("astrofm-tile") for n in threads_seen)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # an executor we own: left open
        assert map_tiles(_core_sum, data, tiles, scheduler=pool) == serial
        assert pool.submit(int, "5").result() == 5
    assert map_tiles(_core_sum, data, tiles, scheduler="serial") == serial
    # batches: lists of tiles in, one result per tile out, still in tile order
    sizes = []

    def batched(batch):
        sizes.append(len(batch))
        return [_core_sum(t) for t in batch]

    assert map_tiles(batched, data, tiles, batch_size=10) == serial
    assert sizes == [10] * 6 + [3]
    assert map_tiles(batched, data, tiles, scheduler="threads", workers=2, batch_size=4) == serial
    assert map_tiles(_core_sum, data, []) == []


def test_scheduler_registry_and_errors():
    data = np.ones((100, 100))
    tiles = plan_tiles(data.shape, 64, 16)
    made = []

    def factory(workers):
        made.append(workers)
        return concurrent.futures.ThreadPoolExecutor(workers or 1)

    register_scheduler("test-pool", factory)
    try:
        assert map_tiles(lambda t: t.index, data, tiles, scheduler="test-pool", workers=2) == \
            [0, 1, 2, 3]
        assert made == [2]
    finally:
        SCHEDULERS.remove("test-pool")
    with pytest.raises(InputError, match="Unknown scheduler 'banana'; choose one of serial, "
                                         "threads, dask"):
        map_tiles(_core_sum, data, tiles, scheduler="banana")
    with pytest.raises(InputError, match="submit method"):
        map_tiles(_core_sum, data, tiles, scheduler=3)
    with pytest.raises(InputError, match="workers"):
        map_tiles(_core_sum, data, tiles, scheduler="threads", workers=0)
    with pytest.raises(InputError, match="batch_size"):
        map_tiles(_core_sum, data, tiles, batch_size=0)
    with pytest.raises(InputError, match="one result per tile"):
        map_tiles(lambda batch: [1], data, tiles, batch_size=2)
    with pytest.raises(InputError, match="list of Tile"):
        map_tiles(_core_sum, data, [(slice(0, 5), slice(0, 5))])
    with pytest.raises(InputError):
        register_scheduler("x", "not callable")

    def boom(tile):
        if tile.index == 2:
            raise ValueError("tile 2 is bad")
        return tile.index

    for scheduler in (None, "threads"):
        with pytest.raises(ValueError, match="tile 2 is bad"):
            map_tiles(boom, data, tiles, scheduler=scheduler, workers=2)


class ReverseExecutor:
    """Runs every task submitted so far, last first, when the first result is asked for."""

    _max_workers = 1000  # so that map_tiles submits every tile before it asks for a result

    def __init__(self):
        self.tasks, self.order = [], []

    def submit(self, fn, *args):
        future = concurrent.futures.Future()
        self.tasks.append((future, fn, args))
        future.result = lambda timeout=None, f=future: self._run(f)
        return future

    def _run(self, future):
        for f, fn, args in reversed(self.tasks):
            if not f.done():
                self.order.append(args[2][0].index)  # _run(func, source, tiles, ...)
                f.set_result(fn(*args))
        return concurrent.futures.Future.result(future)


# --- find_sources on tiles ---------------------------------------------------------------

@pytest.fixture(scope="module")
def field():
    image, truth = make_radio_field(shape=(700, 760), n_compact=80, n_extended=8,
                                    n_artefacts=0, seed=9)
    return image, truth, find_sources(image)


def _away_from_cuts(table, tiles, shape, margin):
    """Rows whose bbox lies ``margin`` pixels inside the core holding their centre (on the
    sides that face another tile)."""
    keep = np.zeros(len(table), bool)
    x, y = np.asarray(table["x"]), np.asarray(table["y"])
    box = {k: np.asarray(table[k]) for k in ("bbox_xmin", "bbox_xmax", "bbox_ymin",
                                             "bbox_ymax")}
    for tile in tiles:
        (cy, cx) = tile.core
        lo_x, hi_x = cx.start + margin * (cx.start > 0), cx.stop - margin * (cx.stop < shape[1])
        lo_y, hi_y = cy.start + margin * (cy.start > 0), cy.stop - margin * (cy.stop < shape[0])
        keep |= (owned(tile, x, y) & (box["bbox_xmin"] >= lo_x) & (box["bbox_xmax"] < hi_x)
                 & (box["bbox_ymin"] >= lo_y) & (box["bbox_ymax"] < hi_y))
    return keep


def _same_tables(a, b):
    assert a.colnames == b.colnames and len(a) == len(b)
    for name in a.colnames:
        if name == "sky_centroid":
            assert a[name].separation(b[name]).max().arcsec == 0.0
        else:
            np.testing.assert_array_equal(np.asarray(getattr(a[name], "value", a[name])),
                                          np.asarray(getattr(b[name], "value", b[name])),
                                          err_msg=name)
    for key in ("psf_fwhm_pix", "psf_source", "noise_correlation_fwhm_pix", "matched_filter",
                "filter_noise_ratio", "npixels", "tile_size"):
        assert a.meta[key] == b.meta[key], key


def test_find_sources_serial_equals_threads_and_any_order(field):
    image, truth, _ = field
    serial = find_sources(image, tile_size=TILE, overlap=OVERLAP)
    assert serial.meta["tile_size"] == TILE and len(serial) > 70
    threads = find_sources(image, tile_size=TILE, overlap=OVERLAP, scheduler="threads",
                           workers=3)
    _same_tables(serial, threads)
    # tiles run last first: the same table (the plan is made before any tile runs)
    backwards = ReverseExecutor()
    reverse = find_sources(image, tile_size=TILE, overlap=OVERLAP, scheduler=backwards)
    n_tiles = len(plan_tiles(image.shape, TILE, OVERLAP))
    assert n_tiles == 12 and backwards.order == list(range(n_tiles - 1, -1, -1))
    _same_tables(serial, reverse)
    # island ids are unique across tiles: sources of one island come from one tile
    assert serial["island"].max() <= len(serial)


def test_tiled_plan_is_the_whole_image_plan(field):
    image, _, whole = field
    for tile_size in (250, TILE, 420):
        tiled = find_sources(image, tile_size=tile_size, overlap=OVERLAP)
        for key in ("psf_fwhm_pix", "psf_source", "noise_correlation_fwhm_pix",
                    "matched_filter", "filter_noise_ratio", "npixels"):
            assert tiled.meta[key] == whole.meta[key], key


def test_tiled_and_untiled_find_the_same_sources_inside_cores(field):
    image, truth, whole = field
    tiles = plan_tiles(image.shape, TILE, OVERLAP)
    inner = _away_from_cuts(whole, tiles, image.shape, margin=20)
    assert inner.sum() > 50
    # the same background maps: sources inside cores come out identical
    maps = estimate_background(image)
    shared = find_sources(image, background=maps, tile_size=TILE, overlap=OVERLAP)
    ref = find_sources(image, background=maps)
    keep = _away_from_cuts(ref, tiles, image.shape, margin=20)
    d = np.hypot(np.asarray(shared["x"])[:, None] - np.asarray(ref["x"])[keep],
                 np.asarray(shared["y"])[:, None] - np.asarray(ref["y"])[keep])
    match = d.argmin(axis=0)
    assert d.min(axis=0).max() < 1e-9
    for name in ("bbox_xmin", "bbox_ymax", "area", "peak", "flux", "snr", "n_peaks"):
        np.testing.assert_allclose(np.asarray(getattr(shared[name], "value", shared[name]))[match],
                                   np.asarray(getattr(ref[name], "value", ref[name]))[keep],
                                   rtol=1e-6, err_msg=name)
    # each tile's own background: the same sources, positions within 0.05 pixel
    own = find_sources(image, tile_size=TILE, overlap=OVERLAP)
    d = np.hypot(np.asarray(own["x"])[:, None] - np.asarray(whole["x"])[inner],
                 np.asarray(own["y"])[:, None] - np.asarray(whole["y"])[inner])
    assert np.mean(d.min(axis=0) < 0.05) > 0.95 and d.min(axis=0).max() < 0.5
    # and each found once: no source inside a core is reported by two tiles
    assert np.all((d < 1).sum(axis=0) == 1)


def test_plan_window_is_chosen_from_the_image(monkeypatch, field):
    """A large image's plan comes from one window, the central one unless it lacks data."""
    image, _, _ = field
    monkeypatch.setattr(sources_tiled, "PLAN_WINDOW", 256)
    data = image.data.copy()
    data[200:500, 200:560] = np.nan  # the central 256 x 256 window is empty
    holed = SkyImage(data, wcs=image.wcs, unit=image.unit, beam=image.beam,
                     header=image.header, source="holed")
    window = sources_tiled._plan_window(holed, None)
    assert isinstance(window, Tile) and window.data.shape == (256, 256)
    assert np.isfinite(window.data).mean() >= 0.5
    # the nearest window of the 256-pixel grid to the centre with enough data
    (ys, xs) = window.slices
    assert (ys.start, xs.start) in {(0, 256), (444, 256), (256, 0), (256, 504)}
    a = find_sources(holed, tile_size=TILE, overlap=OVERLAP)
    b = find_sources(holed, tile_size=420, overlap=OVERLAP, scheduler="threads", workers=2)
    for key in ("psf_fwhm_pix", "noise_correlation_fwhm_pix", "filter_noise_ratio"):
        assert a.meta[key] == b.meta[key], key
    assert len(a) > 30 and not np.any((a["x"] > 205) & (a["x"] < 555) & (a["y"] > 205)
                                      & (a["y"] < 495))
    with pytest.raises(InputError, match="no valid pixel"):
        find_sources(SkyImage(np.full((400, 400), np.nan)), tile_size=TILE, overlap=OVERLAP)


@pytest.mark.slow
def test_threads_do_not_let_silenced_warnings_through():
    """photutils silences warnings with warnings.catch_warnings, which threads race on (a
    NoDetectionsWarning escaped in 6 runs out of 8 before map_tiles' ignore_warnings)."""
    rng = np.random.default_rng(1)
    data = rng.normal(size=(900, 900)).astype(np.float32)  # no source: every tile warns
    data[:300, :300] = np.nan
    image = SkyImage(data)
    for _ in range(4):  # pytest turns warnings into errors
        found = find_sources(image, tile_size=160, overlap=40, psf_fwhm=3.0, snr=6,
                             scheduler="threads", workers=4)
        assert found.meta["tile_size"] == 160


def test_background_of_a_tile_with_a_blank_edge():
    """A tile whose last boxes hold no data at all (photutils hands empty boxes)."""
    data = np.random.default_rng(0).normal(size=(300, 300))
    data[:, 256:] = np.nan
    maps = estimate_background((data, None), box_size=64)
    assert maps.method == "Background2D" and np.isfinite(maps.rms[:, :256]).all()
    assert abs(maps.rms_median - 1) < 0.05 and np.isnan(maps.rms[:, 256:]).all()


def test_size_not_array_type_decides_tiling(monkeypatch):
    """A memory-mapped strip longer than a tile, but small, is processed whole."""
    image, _ = make_radio_field(shape=(4100, 120), n_compact=40, n_extended=0, n_artefacts=0,
                                seed=5)
    fits.PrimaryHDU(image.data.astype(">f4"), header=image.header).writeto("strip.fits")
    mapped = load_image("strip.fits", memmap=True)
    assert mapped.mask is None and isinstance(mapped.data, FitsPixels)
    whole = find_sources(mapped)
    assert whole.meta["tile_size"] == 0 and len(whole) > 30
    # now it is large
    monkeypatch.setattr(io_tiles, "MEMORY_BUDGET", 4000 * 120 * sources_core.BYTES_PER_PIXEL)
    tiled = find_sources(mapped)
    assert tiled.meta["tile_size"] == 1024
    d = np.hypot(np.asarray(tiled["x"])[:, None] - np.asarray(whole["x"]),
                 np.asarray(tiled["y"])[:, None] - np.asarray(whole["y"]))
    # each tile estimates its own background maps: a source at the threshold may flip
    assert abs(len(tiled) - len(whole)) <= 1 and np.median(d.min(axis=0)) < 0.05
    with pytest.raises(InputError, match="tile_size"):
        find_sources(image, tile_size=-3)
