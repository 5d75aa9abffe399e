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
traceback too with ``-v``); 1 internal error; 130 interrupted (Ctrl-C);
143 terminated (SIGTERM).

Importing this package imports nothing else, so that Ctrl-C while the
command starts (numpy, astropy and the parser are imported inside `main`)
ends it with one line and exit code 130, not a traceback.
"""

import sys

__all__ = ["main", "build_parser", "describe_image"]

#: The exit code of an interrupted run (128 + SIGINT), as `astrofmtools.cli.run` has it.
_EXIT_INTERRUPTED = 130


def main(argv=None):
    """
    Run the ``astrofm`` command (`astrofmtools.cli.run.main`), Ctrl-C while starting included.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        0 on success; 2 for bad usage or input; 1 for an internal error;
        130 when interrupted (Ctrl-C); 143 when terminated (SIGTERM).

    Examples
    --------
    >>> from astrofmtools.cli import main
    >>> main(["info", "missing.fits", "-q"])
    2
    """
    try:
        from .run import main as run
        return run(argv)
    except KeyboardInterrupt:  # while importing, before run's own handler
        print("astrofm: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED


def __getattr__(name):
    # build_parser and describe_image are imported when first asked for (see above)
    if name == "build_parser":
        from .parser import build_parser
        return build_parser
    if name == "describe_image":
        from .commands_image import describe_image
        return describe_image
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
