# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Kept so that ``astrofmtools.backbones.efficientnet_lite0`` still imports:
the EfficientNet-Lite0 functions are those of `astrofmtools.backbones.efficientnet_lite`,
which converts every embedded EfficientNet-Lite variant.
"""

from .efficientnet_lite import (convert_efficientnet_lite0,  # noqa: F401
                                efficientnet_lite0_state_dict, efficientnet_lite0_weights_path)

__all__ = ["efficientnet_lite0_weights_path", "convert_efficientnet_lite0",
           "efficientnet_lite0_state_dict"]
