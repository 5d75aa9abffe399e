# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ``astrofm`` command: thin calls into the library.

`main` runs it (the ``astrofm`` console script, ``python -m astrofmtools``),
`build_parser` builds its argument parser. The options that several
subcommands share are defined once, in `astrofmtools.cli.options`; the
subcommands live in modules named for the part of the library they call
(``commands_image``, ``commands_embed``, ``commands_classify``,
``commands_detect``, ``commands_catalog``).

Exit codes: 0 success; 2 bad usage or input (one line on stderr, the
traceback too with ``-v``); 1 internal error; 130 interrupted (Ctrl-C).
"""

from .commands_image import describe_image
from .parser import build_parser
from .run import main

__all__ = ["main", "build_parser", "describe_image"]
