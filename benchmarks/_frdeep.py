# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
FR-DEEP FIRST data for the benchmark scripts: default paths and one loader.

FR-DEEP (Tang, Scaife & Leahy 2019, arXiv:1903.11921): 600 FIRST cutouts
(550 train, 50 test), 150x150, background clipped to 0 and scaled to 0-255
by each image's maximum; 0 = FRI, 1 = FRII. ``frdeep_first.npz`` is the
repacking described in ``shared/data/README.md``. The DINOv2 checkpoint in
``shared/weights`` is a third-party DINOv2-architecture ViT-S/14 (see its
README), used only when present.
"""

from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_DATA", "DEFAULT_DINO", "add_frdeep_arguments", "load_frdeep",
           "backbone_weights"]

_SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
#: The FR-DEEP FIRST archive.
DEFAULT_DATA = _SHARED / "data" / "frdeep" / "frdeep_first.npz"
#: DINOv2 ViT-S/14 weights for ``dinov2_vits14``.
DEFAULT_DINO = _SHARED / "weights" / "dinov2_vits14_imgfocus_fp16.safetensors"


def add_frdeep_arguments(parser, weights_option="--dinov2"):
    """Add ``--data`` and the DINOv2 weights option (``--dinov2`` or ``--weights``)."""
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="FR-DEEP FIRST archive (default: %(default)s)")
    parser.add_argument(weights_option, default=str(DEFAULT_DINO),
                        help="weights for dinov2_vits14 (default: %(default)s)")


def load_frdeep(path):
    """
    The FR-DEEP images, class names and split.

    Returns
    -------
    images : `~numpy.ndarray`
        (600, 150, 150) float32, 0-255.
    labels : `~numpy.ndarray`
        The class name of each image (``'FRI'`` or ``'FRII'``).
    split : `~numpy.ndarray`
        ``'train'`` or ``'test'`` for each image.
    """
    d = np.load(path, allow_pickle=False)
    names = np.array([str(c) for c in d["class_names"]])
    return d["images"].astype(np.float32), names[d["labels"]], d["split"].astype(str)


def backbone_weights(backbone, dinov2):
    """
    The weights to load ``backbone`` with: None (the registry's) or, for
    ``dinov2_vits14``, the file ``dinov2``; False (with a message) when that
    file is missing, so that the caller skips the backbone.
    """
    if backbone != "dinov2_vits14":
        return None
    if not Path(dinov2).exists():
        print(f"skipping {backbone}: {dinov2} not found")
        return False
    return dinov2
