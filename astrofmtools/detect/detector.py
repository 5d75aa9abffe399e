# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The `Detector` estimator: train a Faster R-CNN on FITS images, detect on mosaics."""

import math
from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ..utils import json_value

__all__ = ["Detector"]

_FORMAT = "astrofmtools.Detector"
#: 2: ``strategy_options`` in ``params`` (any registered strategy); 1 (read too): frozen or
#: finetune only.
_FORMAT_VERSION = 2
_CONFIG = "config.json"
_WEIGHTS = "model.safetensors"
_ML_PACKAGES = ("torch", "torchvision", "timm", "safetensors")

#: The largest automatic zoom.
MAX_AUTO_ZOOM = 8.0
#: Region proposals and sampled regions per training crop: fewer than torchvision's defaults
#: (2000 and 512, for 800-pixel photographs), enough for crops of a few hundred pixels.
_RCNN_SETTINGS = {"rpn_pre_nms_top_n_train": 1000, "rpn_post_nms_top_n_train": 500,
                  "box_batch_size_per_image": 128}


class Detector:
    """
    Detect sources in FITS images with a Faster R-CNN on a foundation-model backbone.

    A registry backbone (`~astrofmtools.backbones.list_backbones`) under
    torchvision's Faster R-CNN: CNNs (ResNets, EfficientNet-Lite0) through a
    feature pyramid network (`CNNFeaturePyramid`), ViTs through a
    ViTDet-style simple feature pyramid built from their last feature map
    (`SimpleFeaturePyramid`). ``fit`` trains on random crops of FITS images
    with boxes from tables, region files or `~astrofmtools.sources.find_sources`;
    ``predict`` detects on an image or a mosaic of any size, tile by tile
    (`predict_tiled`); ``save`` writes a folder (``config.json`` and
    ``model.safetensors``) that ``load`` reads back offline.

    Pixels are never fed raw: each image's background and noise are
    measured once (`image_levels`), everything below ``noise_floor`` sigma
    is set to 0 and the rest stretched (asinh) over a fixed range in noise
    units (`DetectionPreprocess`), then upscaled by ``zoom`` and normalised
    with the backbone's mean and std.

    Parameters
    ----------
    model : str or `~astrofmtools.backbones.BackboneSpec`, optional
        The backbone (default ``"resnet18"``).
    strategy : str or `~astrofmtools.adapt.Strategy`, optional
        How much of the backbone trains (`~astrofmtools.adapt.list_strategies`):
        ``'finetune'`` (default: everything, the backbone at
        ``backbone_lr_factor`` times the learning rate after
        ``head_warmup_epochs`` with it frozen), ``'frozen'`` (the backbone
        is fixed; the feature pyramid, region proposal network and box head
        train), ``'partial'``, ``'lora'``, ``'bitfit'`` or any registered
        strategy. Batch-norm statistics of pretrained CNNs stay fixed.
    strategy_options : dict, optional
        The strategy's options (e.g. ``{"n_blocks": 1}`` for ``'partial'``,
        ``{"lora_r": 4}`` for ``'lora'``).
    weights : None, str or path, optional
        The backbone's weights (`~astrofmtools.backbones.load_backbone`):
        None for the registry default (offline first), a file, or
        ``"random"``.
    classes : list of str, optional
        Class names in order (default: the sorted labels of the training
        boxes, or ``['source']``).
    zoom : float or 'auto', optional
        Model pixels per image pixel. ``'auto'``: the median training box
        (``sqrt(w * h)``) becomes one patch of a ViT (16 pixels for
        DINOv2's 14, see `SimpleFeaturePyramid`) or 16 pixels for a CNN
        (four times the stride of the finest pyramid level), never less than
        1 nor more than 8.
    anchor_sizes, aspect_ratios : 'auto' or tuple, optional
        ``'auto'``: from the training boxes after the zoom (`auto_anchors`).
    crop_size : int, optional
        Side of the training crops in model pixels (multiple of 32).
    epochs : int, optional
        Passes over the training images (each pass: enough random crops to
        cover their area once, at least one batch).
    batch_size : int, optional
        Crops per training step.
    lr : float, optional
        AdamW learning rate of the pyramid and heads (linear warm-up, then
        cosine decay).
    backbone_lr_factor : float, optional
        ``finetune``: the backbone's learning rate relative to ``lr``.
        Default: 0.1 for pretrained CNNs, 0.02 for pretrained ViTs (a ViT
        fine-tuned faster with batches of a few crops loses its features:
        every region then looks like background), 1 for
        ``weights='random'``.
    head_warmup_epochs : int, optional
        ``finetune``: epochs with the backbone frozen first, so that random
        heads do not send large gradients into pretrained features
        (default: 1 with pretrained weights, 0 with ``weights='random'``).
    weight_decay : float, optional
    fpn_channels : int, optional
        Channels of the pyramid levels (torchvision's detectors: 256).
    representation_size : int, optional
        Width of the box head's fully connected layers (torchvision: 1024).
        The defaults, half of torchvision's, suit a few classes of small
        objects and train twice as fast on a CPU.
    preprocess : dict, optional
        Settings of `DetectionPreprocess` (``noise_floor``, ``stretch``,
        ``a``, ``vmax``).
    augment : bool, optional
        Flips, quarter turns, blur and contrast changes of the crops.
    device : str, optional
        Default: CUDA when available, else CPU.
    seed : int, optional
        Seeds the initialisation, the crops and the augmentations.
    checkpoint_dir : str or path, optional
        Write ``checkpoint.pt`` there after every epoch and resume from it.

    Attributes
    ----------
    model_ : `torchvision.models.detection.FasterRCNN`
    classes_ : list of str
    preprocess_ : `DetectionPreprocess`
        With the resolved zoom.
    anchor_sizes_, aspect_ratios_ : tuple
    history_ : `~astropy.table.Table`
        One row per epoch: ``epoch``, ``loss`` and its four parts, ``seconds``.

    Examples
    --------
    A tiny randomly initialised ViT learns compact sources of a synthetic
    radio field in a few seconds (real use: a pretrained backbone and more
    epochs):

    >>> from astrofmtools.backbones import BackboneSpec
    >>> from astrofmtools.datasets import make_radio_field
    >>> from astrofmtools.detect import Detector
    >>> image, truth = make_radio_field((128, 128), n_compact=15, n_extended=0,
    ...                                 n_artefacts=0, snr_range=(30, 100), seed=1)
    >>> spec = BackboneSpec(name="vit_det_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 1,
    ...                                  "embed_dim": 32, "num_heads": 2,
    ...                                  "dynamic_img_size": True})
    >>> det = Detector(spec, weights="random", epochs=2, crop_size=64, fpn_channels=16,
    ...                representation_size=32, device="cpu")
    >>> det.fit([image], [truth])
    <Detector: vit_det_doc, strategy='finetune', 1 class, zoom 1.14>
    >>> found = det.predict(image, score_threshold=0.0)
    >>> "sky_centroid" in found.colnames
    True
    """

    def __init__(self, model="resnet18", strategy="finetune", weights=None, classes=None,
                 strategy_options=None,
                 zoom="auto", anchor_sizes="auto", aspect_ratios="auto", crop_size=256,
                 epochs=20, batch_size=4, lr=1e-3, backbone_lr_factor=None,
                 head_warmup_epochs=None, weight_decay=1e-4,
                 fpn_channels=128, representation_size=512, preprocess=None, augment=True,
                 device=None, seed=0, checkpoint_dir=None):
        from ..adapt import TrainSettings, get_strategy
        self.strategy_ = get_strategy(strategy, **dict(strategy_options or {}))
        # the schedule's values, checked before any work
        TrainSettings(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                      head_warmup_epochs=head_warmup_epochs or 0)
        if not (zoom == "auto" or (isinstance(zoom, (int, float)) and zoom > 0)):
            raise InputError(f"zoom must be a positive number or 'auto', not {zoom!r}.")
        if int(crop_size) % 32 or int(crop_size) < 32:
            raise InputError(f"crop_size must be a positive multiple of 32, not {crop_size}.")
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if int(value) < 1:
                raise InputError(f"{name} must be at least 1, not {value}.")
        self.model = model
        self.strategy = self.strategy_.name
        self.weights = None if weights is None else str(weights)
        self.classes = None if classes is None else [str(c) for c in classes]
        self.zoom = zoom
        self.anchor_sizes = anchor_sizes
        self.aspect_ratios = aspect_ratios
        self.crop_size = int(crop_size)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.backbone_lr_factor = backbone_lr_factor
        self.head_warmup_epochs = head_warmup_epochs
        self.weight_decay = float(weight_decay)
        self.fpn_channels = int(fpn_channels)
        self.representation_size = int(representation_size)
        self.preprocess = dict(preprocess or {})
        unknown = set(self.preprocess) - {"noise_floor", "stretch", "a", "vmax"}
        if unknown:
            raise InputError(f"Unknown preprocess settings {sorted(unknown)}; use noise_floor, "
                             "stretch, a or vmax (zoom is a Detector argument; the "
                             "normalisation comes from the backbone).")
        self.augment = bool(augment)
        self.device = device
        self.seed = int(seed)
        self.checkpoint_dir = None if checkpoint_dir is None else str(checkpoint_dir)
        self.model_ = None

    def __repr__(self):
        name = getattr(self.model, "name", self.model)
        if hasattr(self, "spec_"):
            name = self.spec_.name
        if self.model_ is None:
            return f"<Detector: {name}, strategy={self.strategy!r}, not fitted>"
        n = len(self.classes_)
        return (f"<Detector: {name}, strategy={self.strategy!r}, {n} class{'es' * (n != 1)}, "
                f"zoom {self.preprocess_.zoom:.3g}>")

    # ------------------------------------------------------------------ building
    def _device(self):
        from ..backbones import default_device
        return default_device(self.device)

    def _spec(self):
        import copy
        from ..backbones import BackboneSpec, get_backbone_spec, get_family
        spec = self.model if isinstance(self.model, BackboneSpec) else \
            get_backbone_spec(self.model)
        spec = copy.deepcopy(spec)
        # detector inputs have any size: the family adds what its models need (ViTs:
        # dynamic_img_size)
        return get_family(spec).detection_spec(spec)

    @staticmethod
    def _build(spec, weights, classes, anchor_sizes, aspect_ratios, fpn_channels,
               representation_size):
        from ..backbones import load_backbone
        from .model import build_faster_rcnn
        backbone = load_backbone(spec, weights=weights, device="cpu")
        # the family names its pyramid: CNNFeaturePyramid, SimpleFeaturePyramid (ViTs)
        pyramid = backbone.family.detection_pyramid(backbone, fpn_channels)
        return build_faster_rcnn(pyramid, len(classes), anchor_sizes, aspect_ratios,
                                 representation_size=representation_size, **_RCNN_SETTINGS)

    def _target_size(self, spec):
        from ..backbones import get_family
        return get_family(spec).detection_target_size(spec)

    def _resolve_zoom(self, spec, boxes):
        if self.zoom != "auto":
            return float(self.zoom)
        sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        median = float(np.median(sizes))
        return round(float(np.clip(self._target_size(spec) / median, 1.0, MAX_AUTO_ZOOM)), 3)

    def _backbone_lr_factor(self, spec):
        if self.backbone_lr_factor is not None:
            return float(self.backbone_lr_factor)
        if self.weights == "random":
            return 1.0
        from ..backbones import get_family
        return get_family(spec).detection_lr_factor

    def _head_warmup_epochs(self):
        if not self.strategy_.trains_backbone:
            return 0
        if self.head_warmup_epochs is not None:
            return int(self.head_warmup_epochs)
        return 0 if self.weights == "random" else 1

    # ------------------------------------------------------------------ fit
    def fit(self, images, boxes=None, label_column=None, find_sources_kwargs=None):
        """
        Train on FITS images and their boxes.

        Parameters
        ----------
        images : list
            Training images: paths, `~astrofmtools.io.SkyImage` or anything
            `~astrofmtools.io.load_image` takes (held in memory).
        boxes : list, table, ``'find_sources'`` or None
            One entry per image: a table (bbox columns, or sky or pixel
            positions with sizes), a region file, or a table file; or one
            table with an ``image`` column; or ``'find_sources'`` / None
            for pseudo-labels from `~astrofmtools.sources.find_sources`
            (see `load_training_set` and `boxes_for_image`).
        label_column : str, optional
            Column of the class labels (None: one class, ``'source'``).
        find_sources_kwargs : dict, optional
            Arguments of `~astrofmtools.sources.find_sources` for pseudo-labels.

        Returns
        -------
        self : `Detector`
        """
        import torch
        from astropy.table import Table
        from ..adapt import TrainLoop, cosine_factor
        from .data import CropSampler, DetectionPreprocess, TrainingImage, image_levels
        from .data import load_training_set
        from .model import auto_anchors

        device = self._device()
        spec = self._spec()
        raw, classes = load_training_set(images, boxes, label_column=label_column,
                                         classes=self.classes,
                                         find_sources_kwargs=find_sources_kwargs)
        all_boxes = np.concatenate([b for _, b, _ in raw])
        zoom = self._resolve_zoom(spec, all_boxes)
        pre = DetectionPreprocess(zoom=zoom, mean=spec.mean, std=spec.std, **self.preprocess)
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
        anchor_sizes = auto_sizes if self.anchor_sizes == "auto" else self.anchor_sizes
        aspect_ratios = auto_ratios if self.aspect_ratios == "auto" else self.aspect_ratios

        torch.manual_seed(self.seed)
        model = self._build(spec, self.weights, classes, anchor_sizes, aspect_ratios,
                            self.fpn_channels, self.representation_size)
        self.spec_ = spec
        self.weights_source_ = model.backbone.body.weights
        body = model.backbone.body
        self.strategy_.prepare(body)
        model.to(device)
        body_ids = {id(p) for p in body.parameters()}
        head_params = [p for p in model.parameters() if id(p) not in body_ids]
        groups = [{"params": head_params, "lr": self.lr, "base_lr": self.lr,
                   "weight_decay": self.weight_decay}]
        groups += self.strategy_.param_groups(body, self.lr * self._backbone_lr_factor(spec),
                                              layer_decay=1.0, weight_decay=self.weight_decay)
        optimizer = torch.optim.AdamW(groups, foreach=True)

        sampler = CropSampler(samples, self.crop_size, zoom, augment=self.augment)
        warmup_epochs = self._head_warmup_epochs()
        # a pretrained CNN keeps its batch-norm statistics; one from random weights learns them
        task = DetectionTask(model, sampler, pre, self.batch_size, self.seed, self.strategy_,
                             warmup_epochs, train_norm_stats=self.weights == "random")
        total = len(task) * self.epochs
        warmup = min(max(1, total // 10), 200)

        def on_step(step):
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * cosine_factor(step, total, warmup)

        settings = {"spec": spec.to_dict(), "weights": self.weights,
                    "strategy": self.strategy_.config(), "classes": classes, "zoom": zoom,
                    "anchors": [anchor_sizes, aspect_ratios], "crop_size": self.crop_size,
                    "batch_size": self.batch_size, "lr": self.lr, "epochs": self.epochs,
                    "seed": self.seed, "preprocess": pre.to_dict(),
                    "backbone_lr": self._backbone_lr_factor(spec), "head_warmup": warmup_epochs,
                    "data": [[s.name, s.boxes.tolist()] for s in samples]}
        checkpoint = None if self.checkpoint_dir is None else \
            Path(self.checkpoint_dir) / "checkpoint.pt"
        loop = TrainLoop(model, optimizer, epochs=self.epochs, seed=self.seed, device=device,
                         checkpoint=checkpoint, settings=settings, on_step=on_step, desc=f"detector ({spec.name}, {self.strategy})")
        history = loop.run(task)
        model.eval()
        self.model_ = model
        self.classes_ = classes
        self.preprocess_ = pre
        self.anchor_sizes_ = tuple(tuple(float(s) for s in a) for a in anchor_sizes)
        self.aspect_ratios_ = tuple(float(r) for r in aspect_ratios)
        self.n_train_images_ = len(samples)
        self.n_train_boxes_ = int(len(all_boxes))
        self.history_ = Table(rows=history) if history else Table()
        return self

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        if self.model_ is None:
            raise InputError("The Detector is not trained: call fit() or Detector.load().")

    def predict_tiles_function(self, background, rms, score_threshold=0.5):
        """
        The callable `predict_tiled` runs on each batch of tiles.

        Parameters
        ----------
        background, rms : float
            The mosaic's levels (`image_levels`), so that every tile is
            normalised alike.
        score_threshold : float, optional
            Detections scoring less are dropped.

        Returns
        -------
        predict_tiles : callable
            ``predict_tiles(tiles) -> [(boxes, scores, labels), ...]``: for
            raw 2-D tiles, boxes ``(M, 4)`` as pixel edges in tile
            coordinates, scores ``(M,)`` and labels ``(M,)`` (>= 1).
        """
        import torch
        self._check_fitted()
        model, pre, device = self.model_, self.preprocess_, self._device()
        model.to(device).eval()

        def predict_tiles(tiles):
            out = [None] * len(tiles)
            groups = {}
            for i, tile in enumerate(tiles):
                groups.setdefault(tuple(np.shape(tile)), []).append(i)
            for shape, idx in groups.items():
                unit = np.stack([pre.to_unit(tiles[i], background, rms) for i in idx])
                x, (sy, sx) = pre.to_tensor(unit)
                with torch.inference_mode():
                    results = model(list(x.to(device)))
                scale = torch.tensor([sx, sy, sx, sy])
                limit = torch.tensor([shape[1], shape[0], shape[1], shape[0]],
                                     dtype=torch.float32)
                for i, r in zip(idx, results):
                    keep = r["scores"].cpu() >= score_threshold
                    boxes = r["boxes"].cpu()[keep].float() / scale
                    boxes = torch.minimum(boxes.clamp(min=0), limit)
                    out[i] = (boxes.numpy(), r["scores"].cpu()[keep].numpy(),
                              r["labels"].cpu()[keep].numpy())
            return out

        return predict_tiles

    def predict(self, image, tile=512, overlap=64, score_threshold=0.5, iou_threshold=0.3,
                batch_size=4, class_agnostic=False, scheduler=None, workers=None):
        """
        Detect sources in an image or a mosaic of any size.

        The image is read tile by tile (memory-mapped files are never read
        whole): tiles of ``tile`` pixels overlapping by ``overlap``, each
        normalised with the mosaic's own background and noise (measured
        once on a subsample, `image_levels`), detected in batches, mapped
        back to mosaic pixels, kept by the tile that owns their centre, and
        de-duplicated with a global non-maximum suppression
        (`predict_tiled`). An image smaller than a tile is one tile.

        Parameters
        ----------
        image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        tile : int, optional
            Tile side in image pixels (the model sees ``tile * zoom``).
        overlap : int, optional
            Pixels shared by neighbouring tiles; larger than the largest source.
        score_threshold : float, optional
            Keep detections scoring at least this (0-1).
        iou_threshold : float, optional
            Intersection over union above which overlapping boxes are
            duplicates (inside a tile and across tiles). Lower than the
            usual 0.5: boxes of compact sources are a few pixels across, so
            two boxes one pixel apart already overlap little, and distinct
            sources rarely overlap.
        batch_size : int, optional
            Tiles per forward pass.
        class_agnostic : bool, optional
            Suppress duplicates across classes too.
        scheduler, workers : optional
            How the tiles are mapped (`~astrofmtools.io.map_tiles`): serial
            by default, ``"threads"``, a registered scheduler or an executor.

        Returns
        -------
        table : `~astropy.table.QTable`
            One row per detection, best score first: ``id``, ``x``, ``y``
            (box centre, 0-based pixel), ``bbox_xmin``, ``bbox_xmax``,
            ``bbox_ymin``, ``bbox_ymax`` (0-based inclusive), ``score``,
            ``label`` (class name), ``label_id``, ``sky_centroid``, ``ra``,
            ``dec`` (with a celestial WCS) and ``tile``. ``meta`` records
            the model, its weights, the preprocessing and the image's levels.
        """
        from ..io import load_image
        from ..utils import provenance
        from .data import image_levels
        from .tiling import predict_tiled
        self._check_fitted()
        image = load_image(image, memmap=True) if isinstance(image, (str, Path)) else \
            load_image(image)
        image.require_2d("detection")
        background, rms = image_levels(image)
        function = self.predict_tiles_function(background, rms, score_threshold)
        self.model_.roi_heads.score_thresh = float(score_threshold)
        self.model_.roi_heads.nms_thresh = float(iou_threshold)
        table = predict_tiled(image, function, tile=tile, overlap=overlap,
                              iou_threshold=iou_threshold, batch_size=batch_size,
                              class_agnostic=class_agnostic,
                              labels=["background"] + list(self.classes_), desc="detect",
                              scheduler=scheduler, workers=workers)
        table.meta.update(provenance(
            packages=_ML_PACKAGES, stage="detect", model=self.spec_.name,
            strategy=self.strategy, weights=self.weights_source_,
            preprocess=self.preprocess_.to_dict(), image_background=background,
            image_rms=rms, score_threshold=float(score_threshold)))
        return table

    # ------------------------------------------------------------------ save / load
    def _config(self):
        from ..utils import provenance
        options = self.strategy_.config()
        options.pop("name")
        params = {"strategy": self.strategy, "strategy_options": options,
                  "weights": self.weights, "classes": self.classes,
                  "zoom": self.zoom, "anchor_sizes": self.anchor_sizes,
                  "aspect_ratios": self.aspect_ratios, "crop_size": self.crop_size,
                  "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                  "backbone_lr_factor": self.backbone_lr_factor,
                  "head_warmup_epochs": self.head_warmup_epochs,
                  "weight_decay": self.weight_decay, "fpn_channels": self.fpn_channels,
                  "representation_size": self.representation_size,
                  "preprocess": self.preprocess, "augment": self.augment, "seed": self.seed}
        return json_value({
            "format": _FORMAT, "format_version": _FORMAT_VERSION,
            "params": params, "backbone": self.spec_.name,
            "backbone_spec": self.spec_.to_dict(), "weights_source": self.weights_source_,
            "classes": list(self.classes_), "preprocess": self.preprocess_.to_dict(),
            "anchor_sizes": self.anchor_sizes_, "aspect_ratios": self.aspect_ratios_,
            "n_train_images": self.n_train_images_, "n_train_boxes": self.n_train_boxes_,
            "history": self.history_,
            "provenance": provenance(stage="detect-train", packages=_ML_PACKAGES),
        })

    def save(self, path, overwrite=False):
        """
        Save the trained detector to a folder: ``config.json`` and ``model.safetensors``.

        The folder holds every setting, the backbone's registry entry, the
        preprocessing (with the resolved zoom), the anchors, the classes,
        the training history and versions, and all the weights (backbone
        included), so `load` needs neither the training data nor the
        network. It is written through a temporary folder renamed into
        place.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The folder to create.
        overwrite : bool, optional
            Replace an existing folder.
        """
        from ..utils import write_saved_model
        self._check_fitted()
        write_saved_model(path, self.model_.state_dict(), self._config(), overwrite=overwrite,
                          config_name=_CONFIG, weights_name=_WEIGHTS)

    @classmethod
    def load(cls, path, device=None):
        """
        Load a detector saved by `save`, offline.

        The backbone's architecture is built from the stored registry entry
        with random weights, then every tensor of the saved model is loaded
        (strictly: names and shapes must match) from the safetensors file,
        which holds no code.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The folder.
        device : str, optional
            Where to run (default: `~astrofmtools.backbones.default_device`).

        Returns
        -------
        detector : `Detector`
            Ready for `predict`.
        """
        import torch
        from safetensors.torch import load_file
        from ..backbones import BackboneSpec
        from .data import DetectionPreprocess

        from ..utils import read_saved_config
        path = Path(path)
        config = read_saved_config(path, _FORMAT, _FORMAT_VERSION, _CONFIG, _WEIGHTS)
        spec = BackboneSpec.from_dict(config["backbone_spec"])
        params = dict(config["params"])
        det = cls(model=spec, device=device, **params)
        anchor_sizes = tuple(tuple(a) for a in config["anchor_sizes"])
        aspect_ratios = tuple(config["aspect_ratios"])
        classes = list(config["classes"])
        model = cls._build(spec, "random", classes, anchor_sizes, aspect_ratios,
                           det.fpn_channels, det.representation_size)
        det.strategy_.prepare(model.backbone.body)  # adapters, so that the names match
        state = load_file(str(path / _WEIGHTS), device="cpu")
        own = model.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise InputError(f"{str(path / _WEIGHTS)!r} does not match the detector in "
                             f"{_CONFIG}: missing {missing[:5]}, unexpected {unexpected[:5]}.")
        with torch.no_grad():
            model.load_state_dict(state, strict=True)
        det.model_ = model.to(det._device()).eval()
        det.spec_ = spec
        det.weights_source_ = config["weights_source"]
        det.classes_ = classes
        det.preprocess_ = DetectionPreprocess.from_dict(config["preprocess"])
        det.anchor_sizes_, det.aspect_ratios_ = anchor_sizes, aspect_ratios
        det.n_train_images_ = config["n_train_images"]
        det.n_train_boxes_ = config["n_train_boxes"]
        from astropy.table import Table
        det.history_ = Table(rows=config["history"]) if config["history"] else Table()
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
