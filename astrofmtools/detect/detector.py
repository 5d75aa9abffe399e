# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The `Detector` estimator: train a Faster R-CNN on FITS images, detect on mosaics."""

import numpy as np

from ..exceptions import InputError
from .saving import detector_config, load_detector, save_detector
from .training import fit_detector

__all__ = ["Detector"]

_ML_PACKAGES = ("torch", "torchvision", "timm", "safetensors")
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
        The backbone (default ``"efficientnet_lite0"``: its ImageNet
        weights ship with the ``ml`` extra, so it works offline; other
        registry backbones need their weights on the machine, see
        ``astrofm models``).
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

    def __init__(self, model="efficientnet_lite0", strategy="finetune", weights=None, classes=None,
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
        return fit_detector(self, images, boxes, label_column=label_column,
                            find_sources_kwargs=find_sources_kwargs)

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
        from .preprocess import image_levels
        from .tiling import predict_tiled
        self._check_fitted()
        image = load_image(image)
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
        return detector_config(self)

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
        save_detector(self, path, overwrite=overwrite)

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
        return load_detector(cls, path, device=device)
