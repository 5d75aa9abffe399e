# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Detection over a mosaic gives the same table whichever scheduler maps its tiles."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astrofmtools.backbones import BackboneSpec  # noqa: E402
from astrofmtools.datasets import make_radio_field  # noqa: E402
from astrofmtools.detect import Detector  # noqa: E402

SPEC = BackboneSpec(name="vit_det_sched", timm_name="vit_tiny_patch16_224", patch_size=8,
                    input_size=32, feature_dim=32, licence="none",
                    timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 32,
                                 "num_heads": 2, "dynamic_img_size": True})


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    image, truth = make_radio_field((192, 192), n_compact=12, n_extended=0, n_artefacts=0,
                                    snr_range=(30, 100), seed=1)
    det = Detector(SPEC, weights="random", epochs=1, crop_size=64, fpn_channels=8,
                   representation_size=16, device="cpu").fit([image], [truth])
    serial = det.predict(image, tile=80, overlap=16, score_threshold=0.0)
    assert serial.meta["n_tiles"] == 9 and len(serial) > 0
    return det, image, serial


def _assert_same(got, serial):
    assert len(got) == len(serial)
    for name in ("x", "y", "score", "tile"):
        assert np.array_equal(np.asarray(got[name]), np.asarray(serial[name])), name


def test_threads_give_the_serial_detections(trained):
    det, image, serial = trained
    _assert_same(det.predict(image, tile=80, overlap=16, score_threshold=0.0,
                             scheduler="threads", workers=2), serial)


def test_a_dask_client_gives_the_serial_detections(trained):
    distributed = pytest.importorskip("distributed")
    det, image, serial = trained
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1,
                            dashboard_address=":0") as client:
        _assert_same(det.predict(image, tile=80, overlap=16, score_threshold=0.0,
                                 scheduler=client), serial)


@pytest.mark.slow
def test_dask_worker_processes_give_the_serial_detections(trained):
    """The model travels to two worker processes with the tiles (pickled once per worker)."""
    pytest.importorskip("distributed")
    det, image, serial = trained
    _assert_same(det.predict(image, tile=80, overlap=16, score_threshold=0.0,
                             scheduler="dask", workers=2), serial)
