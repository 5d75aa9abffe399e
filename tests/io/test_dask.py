"""The tiled stages on Dask: the same tables as serially, tiles read by the workers."""

import numpy as np
import pytest
from astropy.io import fits

from astrofmtools import InputError
from astrofmtools.datasets import make_radio_field
from astrofmtools.io import schedulers
from astrofmtools.io import FitsPixels, load_image, map_tiles, plan_tiles
from astrofmtools.sources import find_sources

distributed = pytest.importorskip("distributed")

TILE, OVERLAP = 300, 96


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    image, truth = make_radio_field(shape=(700, 650), n_compact=80, n_extended=3, seed=11)
    path = tmp_path_factory.mktemp("dask") / "mosaic.fits"
    fits.PrimaryHDU(image.data.astype(">f4"), header=image.header).writeto(path)
    return path


@pytest.fixture(scope="module")
def client():
    """An in-process cluster (threads): quick to start, the same code path as processes."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _assert_same(a, b):
    assert a.colnames == b.colnames and len(a) == len(b) > 50
    for name in a.colnames:
        if name == "sky_centroid":
            assert a[name].separation(b[name]).max().arcsec == 0.0
        else:
            np.testing.assert_array_equal(np.asarray(getattr(a[name], "value", a[name])),
                                          np.asarray(getattr(b[name], "value", b[name])),
                                          err_msg=name)


def test_find_sources_on_a_dask_client_equals_serial(mosaic, client):
    image = load_image(mosaic, memmap=True)
    assert isinstance(image.data, FitsPixels)
    serial = find_sources(image, tile_size=TILE, overlap=OVERLAP)
    on_dask = find_sources(image, tile_size=TILE, overlap=OVERLAP, scheduler=client)
    _assert_same(serial, on_dask)
    # by address: a client is made for the run and closed after it
    by_address = find_sources(str(mosaic), tile_size=TILE, overlap=OVERLAP,
                              scheduler=client.scheduler.address)
    _assert_same(serial, by_address)


def test_workers_read_their_own_tiles(mosaic, client):
    """Tiles of a file read on demand travel as descriptions (no pixels) and are read remotely."""
    image = load_image(mosaic, memmap=True)
    tiles = plan_tiles(image.shape, TILE, OVERLAP)
    sums = map_tiles(lambda t: float(np.nansum(t.data)), image, tiles, scheduler=client)
    data = fits.getdata(mosaic).astype(float)
    assert np.allclose(sums, [data[t.slices].sum() for t in tiles], rtol=1e-6)


@pytest.mark.slow
def test_local_dask_processes_equal_serial(mosaic):
    serial = find_sources(mosaic, tile_size=TILE, overlap=OVERLAP)
    processes = find_sources(mosaic, tile_size=TILE, overlap=OVERLAP, scheduler="dask",
                             workers=2)
    _assert_same(serial, processes)


def test_unknown_address_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(schedulers, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(InputError, match="Cannot reach the Dask scheduler"):
        map_tiles(len, np.ones((10, 10)), plan_tiles((10, 10), 8, 2),
                  scheduler="tcp://127.0.0.1:1")


def test_features_in_tasks_equal_serial(client, monkeypatch):
    torch = pytest.importorskip("torch")
    from astrofmtools.backbones import extract_features, load_backbone
    from astrofmtools.backbones import features as features_module
    torch.manual_seed(0)
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    cutouts = np.random.default_rng(3).normal(size=(40, 24, 24)).astype(np.float32)
    pre = backbone.default_preprocess(input_size=32)
    serial = extract_features(backbone, cutouts, preprocess=pre, batch_size=8, cache=False)
    monkeypatch.setattr(features_module, "CHUNK", 16)  # 3 tasks of 2 batches (the last 1)
    for scheduler in ("threads", client):
        chunked = extract_features(backbone, cutouts, preprocess=pre, batch_size=8,
                                   cache=False, scheduler=scheduler, workers=2)
        np.testing.assert_array_equal(chunked, serial)
