# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Train a `~astrofmtools.detect.Detector`: the training set at the resolved
zoom, the anchors, the learning rates, and `DetectionTask`, the random crops
and Faster R-CNN losses that `~astrofmtools.adapt.TrainLoop` runs.
"""

import math
from pathlib import Path

import numpy as np

from .crops import CropSampler
from .preprocess import DetectionPreprocess, image_levels
from .training_set import TrainingImage, load_training_set

__all__ = []

#: The largest automatic zoom.
MAX_AUTO_ZOOM = 8.0


def _target_size(spec):
    from ..backbones import get_family
    return get_family(spec).detection_target_size(spec)


def _resolve_zoom(det, spec, boxes):
    if det.zoom != "auto":
        return float(det.zoom)
    sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    median = float(np.median(sizes))
    return round(float(np.clip(_target_size(spec) / median, 1.0, MAX_AUTO_ZOOM)), 3)


def _backbone_lr_factor(det, spec):
    if det.backbone_lr_factor is not None:
        return float(det.backbone_lr_factor)
    if det.weights == "random":
        return 1.0
    from ..backbones import get_family
    return get_family(spec).detection_lr_factor


def _head_warmup_epochs(det):
    if not det.strategy_.trains_backbone:
        return 0
    if det.head_warmup_epochs is not None:
        return int(det.head_warmup_epochs)
    return 0 if det.weights == "random" else 1


def fit_detector(det, images, boxes=None, label_column=None, find_sources_kwargs=None):
    """Train ``det`` on FITS images and their boxes (`Detector.fit`); return ``det``."""
    import torch
    from astropy.table import Table
    from ..adapt import TrainLoop, cosine_factor
    from .model import auto_anchors

    device = det._device()
    spec = det._spec()
    raw, classes = load_training_set(images, boxes, label_column=label_column,
                                     classes=det.classes,
                                     find_sources_kwargs=find_sources_kwargs)
    all_boxes = np.concatenate([b for _, b, _ in raw])
    zoom = _resolve_zoom(det, spec, all_boxes)
    pre = DetectionPreprocess(zoom=zoom, mean=spec.mean, std=spec.std, **det.preprocess)
    samples = []
    for image, b, names in raw:
        background, rms = image_levels(image)
        unit = pre.to_unit(np.asarray(image.data), background, rms)
        labels = np.array([classes.index(str(n)) + 1 for n in names], dtype=np.int64)
        samples.append(TrainingImage(str(image.source), unit, b, labels))
    sizes = np.sqrt((all_boxes[:, 2] - all_boxes[:, 0])
                    * (all_boxes[:, 3] - all_boxes[:, 1])) * zoom
    ratios = (all_boxes[:, 3] - all_boxes[:, 1]) / (all_boxes[:, 2] - all_boxes[:, 0])
    auto_sizes, auto_ratios = auto_anchors(sizes, ratios)
    anchor_sizes = auto_sizes if det.anchor_sizes == "auto" else det.anchor_sizes
    aspect_ratios = auto_ratios if det.aspect_ratios == "auto" else det.aspect_ratios

    torch.manual_seed(det.seed)
    model = det._build(spec, det.weights, classes, anchor_sizes, aspect_ratios,
                       det.fpn_channels, det.representation_size)
    det.spec_ = spec
    det.weights_source_ = model.backbone.body.weights
    body = model.backbone.body
    det.strategy_.prepare(body)
    model.to(device)
    body_ids = {id(p) for p in body.parameters()}
    head_params = [p for p in model.parameters() if id(p) not in body_ids]
    groups = [{"params": head_params, "lr": det.lr, "base_lr": det.lr,
               "weight_decay": det.weight_decay}]
    groups += det.strategy_.param_groups(body, det.lr * _backbone_lr_factor(det, spec),
                                         layer_decay=1.0, weight_decay=det.weight_decay)
    optimizer = torch.optim.AdamW(groups, foreach=True)

    sampler = CropSampler(samples, det.crop_size, zoom, augment=det.augment)
    warmup_epochs = _head_warmup_epochs(det)
    # a pretrained CNN keeps its batch-norm statistics; one from random weights learns them
    task = DetectionTask(model, sampler, pre, det.batch_size, det.seed, det.strategy_,
                         warmup_epochs, train_norm_stats=det.weights == "random")
    total = len(task) * det.epochs
    warmup = min(max(1, total // 10), 200)

    def on_step(step):
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * cosine_factor(step, total, warmup)

    settings = {"spec": spec.to_dict(), "weights": det.weights,
                "strategy": det.strategy_.config(), "classes": classes, "zoom": zoom,
                "anchors": [anchor_sizes, aspect_ratios], "crop_size": det.crop_size,
                "batch_size": det.batch_size, "lr": det.lr, "epochs": det.epochs,
                "seed": det.seed, "preprocess": pre.to_dict(),
                "backbone_lr": _backbone_lr_factor(det, spec), "head_warmup": warmup_epochs,
                "data": [[s.name, s.boxes.tolist()] for s in samples]}
    checkpoint = None if det.checkpoint_dir is None else \
        Path(det.checkpoint_dir) / "checkpoint.pt"
    loop = TrainLoop(model, optimizer, epochs=det.epochs, seed=det.seed, device=device,
                     checkpoint=checkpoint, settings=settings, on_step=on_step,
                     desc=f"detector ({spec.name}, {det.strategy})")
    history = loop.run(task)
    model.eval()
    det.model_ = model
    det.classes_ = classes
    det.preprocess_ = pre
    det.anchor_sizes_ = tuple(tuple(float(s) for s in a) for a in anchor_sizes)
    det.aspect_ratios_ = tuple(float(r) for r in aspect_ratios)
    det.n_train_images_ = len(samples)
    det.n_train_boxes_ = int(len(all_boxes))
    det.history_ = Table(rows=history) if history else Table()
    return det


class DetectionTask:
    """
    Detection for `~astrofmtools.adapt.TrainLoop`: random crops and Faster R-CNN's losses.

    Each epoch draws enough crops to cover the training images once (at
    least one batch), from a generator seeded by ``(seed, epoch)``. The
    strategy sets what trains in each epoch: the heads alone for the first
    ``warmup_epochs``, then its share of the backbone.
    """

    loss_name = "loss"

    def __init__(self, model, sampler, preprocess, batch_size, seed, strategy, warmup_epochs=0,
                 train_norm_stats=False):
        self.model, self.sampler, self.preprocess = model, sampler, preprocess
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.strategy, self.warmup_epochs = strategy, int(warmup_epochs)
        self.train_norm_stats = bool(train_norm_stats)

    def train_mode(self, epoch):
        """After ``model.train()``: what trains this epoch, the rest in evaluation mode."""
        body, warmup = self.model.backbone.body, epoch < self.warmup_epochs
        self.strategy.configure(body, warmup=warmup)
        self.strategy.set_train_mode(body, warmup=warmup, train_norm_stats=self.train_norm_stats)

    def __len__(self):
        return max(1, int(math.ceil(self.sampler.crops_per_pass / self.batch_size)))

    def batches(self, epoch, generator, device):
        """Batches of normalised crops and their targets, on the device."""
        rng = np.random.default_rng([self.seed, epoch])
        for _ in range(len(self)):
            images, targets = self.sampler.batch(rng, self.batch_size)
            yield (self.preprocess.normalize(images).to(device),
                   [{k: v.to(device) for k, v in t.items()} for t in targets])

    def loss(self, batch):
        """The summed losses of a batch, its size and the four parts."""
        x, targets = batch
        losses = self.model(list(x), targets)
        return sum(losses.values()), len(x), losses

    def validate(self, model, device):
        """No validation split: None."""
        return None
