# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Running ``astrofm``: logging, progress bars and exit codes."""

import contextlib
import logging
import signal
import sys
import traceback

from ..exceptions import InputError
from .parser import build_parser

__all__ = ["main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED",
           "EXIT_TERMINATED"]

log = logging.getLogger("astrofmtools")

#: Exit codes: success, an internal error, bad usage or input, interrupted (128 + SIGINT),
#: terminated (128 + SIGTERM: ``kill``, a batch system's time limit).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that ``finally`` blocks remove temporary outputs."""


def _on_sigterm(signum, frame):
    # once: a second SIGTERM must not interrupt the clean-up of the first (SIGKILL still works)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises `_Terminated` inside (main thread only; the old handler after)."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM
        yield
        return
    try:
        yield
    finally:  # (None: a handler not set from Python; the default is the nearest)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _configure_logging(level):
    """Messages of astrofmtools only (not of matplotlib & co.) to stderr."""
    log.setLevel(level)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("astrofm: %(message)s"))
    log.addHandler(handler)


def main(argv=None):
    """
    Run the ``astrofm`` command.

    Messages go to stderr (progress bars only on a terminal and not with
    ``-q``); results go to files, and ``info`` and ``demo`` print to stdout.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        0 on success; 2 for bad usage or input (a one-line message, plus
        the traceback with ``-v``; no subcommand prints the help); 1 for an
        internal error; 130 when interrupted (Ctrl-C); 143 when terminated
        (SIGTERM, as from ``kill`` or a batch system's time limit). An
        interrupted or terminated run removes its temporary outputs and
        leaves no partial output.

    Examples
    --------
    >>> from astrofmtools.cli import main
    >>> main(["info", "missing.fits"])
    2
    """
    with _sigterm_as_interrupt():
        try:
            return _main(argv)
        except _Terminated:
            print("astrofm: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        except KeyboardInterrupt:
            print("astrofm: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


def _main(argv):
    """`main` without the handling of interrupts."""
    from ..plugins import load_plugins
    try:  # before the arguments: --strategy and --head accept what plug-ins register
        load_plugins()
    except InputError as exc:
        print(f"astrofm: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help and --version
        return EXIT_USAGE if exc.code not in (None, 0) else EXIT_OK
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    _configure_logging(level)
    from ..utils.progress import set_progress
    set_progress(not args.quiet)
    try:
        args.run(args)
    except InputError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"astrofm {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (``astrofm info x.fits | head``): stop quietly, as the
        # Python documentation advises, without a second error when stdout is flushed
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (run with -v for the traceback)"
        print(f"astrofm {args.command}: internal error: {type(exc).__name__}: {exc}{hint}",
              file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
