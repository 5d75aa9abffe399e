# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Late fusion: table columns beside the features, missing values handled."""

import numpy as np
import pytest
from astropy.table import MaskedColumn, QTable

torch = pytest.importorskip("torch")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.backbones import BackboneSpec  # noqa: E402
from astrofmtools.classify import Classifier  # noqa: E402
from astrofmtools.cutouts import CutoutStack  # noqa: E402

TINY = BackboneSpec(
    name="vit_tiny_fusion", timm_name="vit_tiny_patch16_224", patch_size=8, input_size=32,
    feature_dim=32, licence="none",
    timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 32, "num_heads": 2})


def stack(n, seed):
    """Images of pure noise: only the 'colour' column tells the classes apart (with 10 % of
    its values missing)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    colour = rng.normal(2.0 * labels, 0.3)
    mask = rng.random(n) < 0.1
    table = QTable({"id": np.arange(1, n + 1), "label": np.where(labels, "red", "blue"),
                    "colour": MaskedColumn(colour, mask=mask)})
    return CutoutStack(rng.normal(size=(n, 16, 16)).astype(np.float32), table)


def test_an_informative_column_decides_and_survives_saving(tmp_path):
    torch.set_num_threads(1)
    train, test = stack(160, 0), stack(100, 1)
    kwargs = dict(weights="random", tta=False, device="cpu", cache=False, seed=0)
    alone = Classifier(TINY, **kwargs).fit(train, "label")
    fused = Classifier(TINY, extra_columns=["colour"], **kwargs).fit(train, "label")
    assert alone.score(test, "label") < 0.75
    assert fused.score(test, "label") > 0.85
    assert fused.head_.in_features == 32 + 1 and len(fused.extra_medians_) == 1
    fused.save(tmp_path / "m")
    again = Classifier.load(tmp_path / "m", device="cpu")
    assert np.allclose(again.predict_proba(test), fused.predict_proba(test))
    with pytest.raises(InputError, match="read from the cutouts' table"):
        fused.predict(np.asarray(test.data))
    with pytest.raises(InputError, match="no column"):
        Classifier(TINY, extra_columns="magnitude", **kwargs).fit(train, "label")
    with pytest.raises(InputError, match="strategy='frozen'"):
        Classifier(TINY, strategy="finetune", extra_columns=["colour"])
