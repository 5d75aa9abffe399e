# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Faster R-CNN (torchvision) on registry backbones: a CNN with a feature
pyramid network, or a ViT with a ViTDet-style simple feature pyramid.

Both pyramids give four maps at strides 4, 8, 16 and 32 input pixels, named
``'0'`` to ``'3'``. torchvision's `~torchvision.models.detection.anchor_utils.AnchorGenerator`
infers each map's stride from its size (image side // map side), so the
sizes must be exact (`PyramidRoIAlign` pools with the strides given):
inputs are multiples of 32 pixels, and a ViT whose patch is not a power of
two (DINOv2's 14) sees its input resampled so that its token grid has the
stride of the next power of two (16): token ``(i, j)`` then covers input
pixels ``[16 i, 16 i + 16)`` exactly.
"""

import math

import numpy as np
import torch
from torch import nn

from ..backbones.pyramids import PYRAMID_STRIDES, CNNFeaturePyramid, SimpleFeaturePyramid
from ..exceptions import InputError

# the pyramids live with the backbone families that build them; re-exported here
__all__ = ["PYRAMID_STRIDES", "CNNFeaturePyramid", "SimpleFeaturePyramid", "PyramidRoIAlign",
           "IdentityTransform", "auto_anchors", "build_faster_rcnn"]

def _roi_align_base():
    from torchvision.ops import MultiScaleRoIAlign
    return MultiScaleRoIAlign


class PyramidRoIAlign(_roi_align_base()):
    """
    RoIAlign over pyramid levels of known strides, with pixel centres aligned.

    torchvision's `~torchvision.ops.MultiScaleRoIAlign` infers the strides
    from the feature-map sizes and samples with ``aligned=False``, which
    puts feature pixel ``j`` at input coordinate ``j * stride`` instead of
    its centre ``(j + 0.5) * stride``: a box exactly over a stride-16 ViT
    token then pools half of it from the next token. Here the strides are
    given and `torchvision.ops.roi_align` runs with ``aligned=True`` (as
    Detectron2's ROIAlignV2); boxes go to levels as torchvision assigns
    them (`torchvision.ops.poolers.LevelMapper`: canonical box side 224 at
    stride 16).

    Parameters
    ----------
    featmap_names : list of str
        The levels to pool from.
    strides : sequence of int
        Their strides (input pixels per feature pixel), powers of two.
    output_size : int, optional
    sampling_ratio : int, optional

    Attributes
    ----------
    scales : list of float
        ``1 / stride`` of each level.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.detect import PyramidRoIAlign
    >>> features = {"0": torch.arange(16.0).reshape(1, 1, 4, 4)}  # stride 8: 32 x 32 input
    >>> pool = PyramidRoIAlign(["0"], strides=[8], output_size=1)
    >>> pool(features, [torch.tensor([[8.0, 16.0, 16.0, 24.0]])], [(32, 32)]).flatten()
    tensor([9.])
    """

    def __init__(self, featmap_names, strides, output_size=7, sampling_ratio=2):
        from torchvision.ops.poolers import LevelMapper
        super().__init__([str(n) for n in featmap_names], int(output_size),
                         int(sampling_ratio))
        self.strides = [int(s) for s in strides]
        if len(self.strides) != len(self.featmap_names):
            raise InputError("PyramidRoIAlign needs one stride per feature map.")
        levels = [int(round(math.log2(s))) for s in self.strides]
        if [2 ** k for k in levels] != self.strides or levels != sorted(levels):
            raise InputError(f"Strides must be increasing powers of two; got {self.strides}.")
        # torchvision's attributes, set here rather than guessed from the first batch
        self.scales = [1.0 / s for s in self.strides]
        self.map_levels = LevelMapper(levels[0], levels[-1])

    def forward(self, x, boxes, image_shapes=None):
        from torchvision.ops import roi_align
        features = [x[name] for name in self.featmap_names]
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], dim=1)
                          for i, b in enumerate(boxes)], dim=0)
        first = features[0]
        if len(features) == 1:
            return roi_align(first, rois, self.output_size, self.scales[0],
                             self.sampling_ratio, aligned=True)
        levels = self.map_levels(boxes)
        result = first.new_zeros((len(rois), first.shape[1]) + self.output_size)
        for level, (feature, scale) in enumerate(zip(features, self.scales)):
            idx = torch.where(levels == level)[0]
            if len(idx):
                result[idx] = roi_align(feature, rois[idx], self.output_size, scale,
                                        self.sampling_ratio, aligned=True).to(result.dtype)
        return result


class IdentityTransform(nn.Module):
    """
    torchvision's detection transform without normalisation or resizing.

    `Detector` feeds images already normalised with the backbone's mean and
    std and sized to multiples of 32 pixels; torchvision's
    `~torchvision.models.detection.transform.GeneralizedRCNNTransform`
    would normalise them again and resize them to ``min_size``.
    """

    def __init__(self):
        super().__init__()
        from torchvision.models.detection.transform import GeneralizedRCNNTransform
        self.inner = GeneralizedRCNNTransform(min_size=32, max_size=1 << 16,
                                              image_mean=[0.0, 0.0, 0.0],
                                              image_std=[1.0, 1.0, 1.0], size_divisible=32)

    def forward(self, images, targets=None):
        from torchvision.models.detection.image_list import ImageList
        sizes = [tuple(int(s) for s in im.shape[-2:]) for im in images]
        for (h, w) in sizes:
            if h % 32 or w % 32:
                raise InputError(f"Detector inputs must be multiples of 32 pixels; got {h} x "
                                 f"{w}.")
        batch = self.inner.batch_images(list(images), size_divisible=32)
        return ImageList(batch, sizes), targets

    def postprocess(self, result, image_shapes, original_image_sizes):
        return result


def auto_anchors(sizes, ratios=None, n_levels=len(PYRAMID_STRIDES), scales_per_level=3,
                 quantiles=(0.02, 0.98)):
    """
    Anchor sizes and aspect ratios from the boxes a detector is trained on.

    The sizes form one geometric sequence of ``n_levels *
    scales_per_level`` values from the ``quantiles[0]`` quantile of the
    box sizes upwards, each ``2 ** (1 / scales_per_level)`` times the
    previous one (a factor 2 per pyramid level, as the strides grow), or
    spread more widely when that does not reach the ``quantiles[1]``
    quantile; each level gets ``scales_per_level`` consecutive sizes.
    Aspect ratios (height / width, torchvision's convention) are 1, plus
    the 15th and 85th percentiles of the boxes' ratios when those differ
    from 1 by more than 25 per cent (elongated sources).

    Parameters
    ----------
    sizes : array-like
        ``sqrt(width * height)`` of the training boxes, in model-input
        pixels (after the zoom).
    ratios : array-like, optional
        ``height / width`` of the boxes.
    n_levels : int, optional
        Pyramid levels.
    scales_per_level : int, optional
        Anchor sizes per level.
    quantiles : (float, float), optional
        The range of sizes to cover.

    Returns
    -------
    anchor_sizes : tuple of tuple of float
        One tuple per level (torchvision's ``AnchorGenerator(sizes=...)``).
    aspect_ratios : tuple of float
        The same for every level.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.detect import auto_anchors
    >>> sizes, ratios = auto_anchors(np.full(50, 16.0), np.ones(50))
    >>> sizes[0], sizes[3][-1], ratios
    ((16.0, 20.16, 25.4), 203.19, (1.0,))
    """
    sizes = np.asarray(sizes, dtype=float)
    sizes = sizes[np.isfinite(sizes) & (sizes > 0)]
    if not sizes.size:
        raise InputError("No training boxes to choose anchor sizes from.")
    lo, hi = np.quantile(sizes, quantiles)
    lo = max(float(lo), 4.0)
    n = int(n_levels) * int(scales_per_level)
    step = 2 ** (1 / int(scales_per_level))
    if n > 1 and lo * step ** (n - 1) < hi:
        step = (hi / lo) ** (1 / (n - 1))
    seq = [round(float(lo * step ** i), 2) for i in range(n)]
    anchor_sizes = tuple(tuple(seq[k * scales_per_level:(k + 1) * scales_per_level])
                         for k in range(n_levels))
    out_ratios = [1.0]
    if ratios is not None:
        r = np.asarray(ratios, dtype=float)
        r = r[np.isfinite(r) & (r > 0)]
        if r.size:
            for q in np.quantile(r, (0.15, 0.85)):
                if abs(math.log(q)) > math.log(1.25):
                    out_ratios.append(round(float(q), 2))
    return anchor_sizes, tuple(sorted(set(out_ratios)))


def build_faster_rcnn(pyramid, num_classes, anchor_sizes, aspect_ratios=(1.0,),
                      representation_size=1024, detections_per_image=300, **kwargs):
    """
    A torchvision Faster R-CNN on a feature pyramid.

    Parameters
    ----------
    pyramid : `CNNFeaturePyramid` or `SimpleFeaturePyramid`
        The backbone with its pyramid (four levels, ``out_channels``).
    num_classes : int
        Object classes, background not included.
    anchor_sizes : tuple of tuple of float
        Anchor sizes per level (`auto_anchors`).
    aspect_ratios : tuple of float, optional
        Height / width of the anchors, the same at every level.
    representation_size : int, optional
        Width of the two fully connected layers of the box head.
    detections_per_image : int, optional
        Most detections kept per image (tile).
    **kwargs
        Passed to `~torchvision.models.detection.FasterRCNN`
        (``rpn_batch_size_per_image``, ``box_batch_size_per_image``...).

    Returns
    -------
    model : `~torchvision.models.detection.FasterRCNN`
        Its ``transform`` is an `IdentityTransform`: inputs are normalised
        and sized by the caller.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.backbones import load_backbone
    >>> from astrofmtools.detect import CNNFeaturePyramid, build_faster_rcnn
    >>> torch.manual_seed(0)  # doctest: +IGNORE_OUTPUT
    >>> pyramid = CNNFeaturePyramid(load_backbone("resnet18", weights="random"), 32)
    >>> model = build_faster_rcnn(pyramid, 1, ((8.0,), (16.0,), (32.0,), (64.0,)),
    ...                           representation_size=64).eval()
    >>> out = model([torch.zeros(3, 64, 64)])
    >>> sorted(out[0])
    ['boxes', 'labels', 'scores']
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import TwoMLPHead

    anchor_sizes = tuple(tuple(float(s) for s in level) for level in anchor_sizes)
    if len(anchor_sizes) != len(PYRAMID_STRIDES) or len({len(a) for a in anchor_sizes}) != 1:
        raise InputError(f"anchor_sizes needs {len(PYRAMID_STRIDES)} levels with the same "
                         f"number of sizes each; got {anchor_sizes}.")
    aspect_ratios = tuple(float(r) for r in aspect_ratios)
    generator = AnchorGenerator(sizes=anchor_sizes,
                                aspect_ratios=(aspect_ratios,) * len(anchor_sizes))
    names = [str(i) for i in range(len(PYRAMID_STRIDES))]
    roi_pool = PyramidRoIAlign(names, PYRAMID_STRIDES, output_size=7, sampling_ratio=2)
    box_head = TwoMLPHead(pyramid.out_channels * 7 * 7, int(representation_size))
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    predictor = FastRCNNPredictor(int(representation_size), int(num_classes) + 1)
    model = FasterRCNN(pyramid, num_classes=None, rpn_anchor_generator=generator,
                       box_roi_pool=roi_pool, box_head=box_head, box_predictor=predictor,
                       box_detections_per_img=int(detections_per_image), **kwargs)
    model.transform = IdentityTransform()
    return model
