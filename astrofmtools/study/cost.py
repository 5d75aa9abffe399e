# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The cost of a study before it runs (`estimate_cost`): rough constants, or timed on a
small batch through each backbone on this machine (`time_backbone`).

A frozen backbone's features are computed once per backbone and preprocessing (the
feature cache shares them between cells), so the first frozen cell of a group carries
the forward passes of every cutout and the others only fit a head; a strategy that
trains the backbone costs forward and backward passes over its labelled cutouts for
each epoch, plus one forward pass over the validation and test cutouts.
"""

import time

import numpy as np

from .config import StudyConfig, study_cells

__all__ = ["estimate_cost", "time_backbone", "SECONDS_PER_CUTOUT"]

#: Rough CPU seconds per cutout at 224 x 224 pixels for a ViT-S or EfficientNet-Lite0 on two
#: cores (scaled by the input area), used without calibration: a forward pass, and a
#: training step (forward and backward); ``head`` is the seconds to fit one head on
#: cached features.
SECONDS_PER_CUTOUT = {"features": 0.06, "epoch": 0.2, "head": 2.0}


def time_backbone(name, weights=None, input_size=224, batch_size=16, device=None):
    """
    Seconds per cutout of a backbone on this machine: a forward pass and a training step.

    Times a batch of random inputs after one warm-up batch (the median of
    three), in inference mode and then with gradients through every
    parameter (forward, backward), as fine-tuning does.

    Parameters
    ----------
    name : str
        A registered backbone.
    weights : str, optional
        As in `~astrofmtools.backbones.load_backbone` (``'random'`` times the
        same as trained weights and needs no file).
    input_size : int, optional
        Pixels per side.
    batch_size : int, optional
    device : str, optional

    Returns
    -------
    seconds : dict
        ``{"features": s, "epoch": s}`` per cutout.

    Examples
    --------
    >>> from astrofmtools.study import time_backbone
    >>> seconds = time_backbone("efficientnet_lite0", weights="random", input_size=32)
    >>> 0 < seconds["features"] < seconds["epoch"]
    True
    """
    import torch
    from ..backbones import load_backbone
    backbone = load_backbone(name, weights=weights, device=device)
    model = backbone.model
    device = next(model.parameters()).device
    x = torch.randn(batch_size, 3, int(input_size), int(input_size), device=device)

    def timed(step):
        step()  # warm-up
        times = []
        for _ in range(3):
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        return float(np.median(times)) / batch_size

    def forward():
        with torch.inference_mode():
            model(x)

    def train():
        model.zero_grad(set_to_none=True)
        model(x).float().square().mean().backward()

    model.eval()
    features = timed(forward)
    model.train()
    epoch = timed(train)
    model.eval()
    return {"features": features, "epoch": epoch}


def estimate_cost(config, n_train=None, n_test=None, calibrate=False):
    """
    An estimate of each cell's seconds, to order and budget the cells before they run.

    Parameters
    ----------
    config : `~astrofmtools.study.StudyConfig`, dict or path
    n_train, n_test : int, optional
        Training and test cutouts (default: read from the data).
    calibrate : bool, optional
        Time each backbone at each input size on this machine
        (`time_backbone`, a few seconds each) instead of using
        `SECONDS_PER_CUTOUT` scaled by the input area.

    Returns
    -------
    estimate : dict
        Seconds per cell name. The first frozen cell of each backbone and
        preprocessing carries the forward passes of every cutout; the other
        frozen cells of the group fit a head on cached features. A cell that
        trains the backbone costs a training step per cutout it fits on (its
        labelled cutouts less the 15 % validation split) and epoch (the
        method's or ``classifier`` ``epochs``, else the strategy's default),
        forward passes only in the head's warm-up epochs, and a forward pass
        over the validation cutouts each epoch and the test cutouts once.

    Examples
    --------
    >>> from astrofmtools.study import estimate_cost
    >>> from astrofmtools.datasets import make_radio_cutouts
    >>> study = {"data": make_radio_cutouts(n_per_class=10, size=32), "labels": "class",
    ...          "methods": ["frozen/linear", "frozen/knn", "finetune/linear"], "seeds": 1}
    >>> cost = estimate_cost(study, n_train=1000, n_test=100)
    >>> [name.split("/", 2)[2] for name in sorted(cost, key=cost.get)]
    ['frozen/knn/f1/s0', 'frozen/linear/f1/s0', 'finetune/linear/f1/s0']
    """
    if not isinstance(config, StudyConfig):
        config = StudyConfig(config)
    if n_train is None or n_test is None:
        from .run import study_data
        _, _, train, test, _ = study_data(config)
        n_train = len(train) if n_train is None else n_train
        n_test = len(test) if n_test is None else n_test
    from ..adapt import get_strategy
    from ..backbones import get_backbone_spec
    rates, featured, out = {}, set(), {}
    for cell in study_cells(config):
        spec = get_backbone_spec(cell["model"])
        size = cell["preprocess"].get("input_size") or spec.input_size
        size = max(1, round(float(size) / spec.patch_size)) * spec.patch_size
        key = (cell["model"], cell["weights"], size)
        if key not in rates:
            if calibrate:
                rates[key] = time_backbone(cell["model"], "random", size,
                                           device=cell["classifier"].get("device"))
            else:
                area = (size / 224) ** 2
                rates[key] = {k: SECONDS_PER_CUTOUT[k] * area for k in ("features", "epoch")}
        rate = rates[key]
        strategy = get_strategy(cell["strategy"])
        if strategy.trains_backbone or config.task.head is not None:  # detectors train
            settings = {**strategy.defaults, **cell["classifier"], **cell["options"]}
            epochs = int(settings.get("epochs", 30))
            warmup = min(epochs, int(settings.get("head_warmup_epochs", 0)))
            labelled = n_train * cell["label_fraction"]
            fit = labelled * (1 - float(settings.get("val_fraction", 0.15)))
            # warm-up epochs train the head alone (forward passes); every epoch scores
            # the validation split; the test cutouts are predicted once
            seconds = (rate["epoch"] * fit * (epochs - warmup)
                       + rate["features"] * (fit * warmup + (labelled - fit) * epochs
                                             + n_test))
        else:
            group = key + (repr(sorted(cell["preprocess"].items())),)
            seconds = SECONDS_PER_CUTOUT["head"]
            if group not in featured:
                featured.add(group)
                seconds += rate["features"] * (n_train + n_test)
        out[cell["name"]] = float(seconds)
    return out
