# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``python -m astrofmtools.cli``: the ``astrofm`` command."""

import sys

if __name__ == "__main__":
    try:
        from . import main
    except KeyboardInterrupt:  # Ctrl-C at the very start: one line, no traceback
        print("astrofm: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
