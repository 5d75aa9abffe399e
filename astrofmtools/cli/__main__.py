# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``python -m astrofmtools.cli``: the ``astrofm`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
