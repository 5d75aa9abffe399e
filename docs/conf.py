# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Sphinx configuration for astrofmtools (sphinx-astropy)."""

import datetime
from importlib.metadata import version as _version

from sphinx_astropy.conf.v2 import *  # noqa: F401, F403
from sphinx_astropy.conf.v2 import extensions, intersphinx_mapping  # noqa: F401

project = "astrofmtools"
author = "The astrofmtools developers"
copyright = f"{datetime.datetime.now().year}, {author}"
release = _version("astrofmtools")
version = ".".join(release.split(".")[:2])

extensions = list(extensions) + ["matplotlib.sphinxext.plot_directive"]
plot_include_source = True
plot_html_show_source_link = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.dpi": 100}

intersphinx_mapping.update({
    "photutils": ("https://photutils.readthedocs.io/en/stable/", None),
    "regions": ("https://astropy-regions.readthedocs.io/en/stable/", None),
    "skimage": ("https://scikit-image.org/docs/stable/", None),
})
# The docs build offline: no inventory is fetched (links fall back to text).
intersphinx_mapping = {}
nitpicky = False
automodapi_toctreedirnm = "reference/api"
automodsumm_inherited_members = False
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme_options = {"github_url": "https://github.com/astrofmtools/astrofmtools"}
html_title = f"{project} {release}"
