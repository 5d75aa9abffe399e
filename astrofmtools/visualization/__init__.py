# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Pictures people look at: images with sources overlaid."""

from .overlay import *  # noqa: F401, F403
