# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Look inside a foundation model's view of a survey.

`embed` turns cutouts into an `Embedding` (feature vectors plus the
source table, and the cutouts themselves for pictures); maps of the
feature space (PCA then UMAP), similarity search and attention maps build
on it. Needs the ``ml`` extra; ``import astrofmtools`` never imports torch.
"""

from .embedding import *  # noqa: F401, F403
from .feature_map import *  # noqa: F401, F403
from .maps import *  # noqa: F401, F403
from .map_plot import *  # noqa: F401, F403
from .class_labels import *  # noqa: F401, F403
from .similarity_index import *  # noqa: F401, F403
from .similarity import *  # noqa: F401, F403
from .similarity_plot import *  # noqa: F401, F403
from .attention import *  # noqa: F401, F403
