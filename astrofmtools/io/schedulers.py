# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Where `map_tiles` runs its function: named schedulers (``serial``,
``threads``, and those added with `register_scheduler`) or an executor.
"""

import concurrent.futures
import contextlib
import os

from ..exceptions import InputError
from ..utils.registry import Registry

__all__ = ["register_scheduler", "SCHEDULERS"]


class _SerialExecutor:
    """Runs each task at once, in the calling thread."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args, **kwargs):
        future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))  # errors raise here, with their traceback
        return future


def _threads(workers):
    return concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                 thread_name_prefix="astrofm-tile")


#: Scheduler name -> factory ``factory(workers)`` returning a context manager
#: that gives an executor (an object whose ``submit(fn, *args)`` returns a
#: future with ``result()``); add one with `register_scheduler`.
SCHEDULERS = Registry("scheduler")
SCHEDULERS.add("serial", lambda workers: _SerialExecutor())
SCHEDULERS.add("threads", _threads)


def register_scheduler(name, factory, overwrite=False):
    """
    Add a scheduler that `map_tiles` (and every tiled stage) can use by name.

    Parameters
    ----------
    name : str
        The name to pass as ``scheduler=``.
    factory : callable
        ``factory(workers) -> executor``: given the number of workers asked
        for (or None), returns a context manager that gives an object with
        a ``submit(fn, *args)`` method returning a future with
        ``result()``; leaving the context releases it. A
        `concurrent.futures.Executor` and a ``dask.distributed.Client`` are
        both.
    overwrite : bool, optional
        Replace a scheduler of the same name.

    Raises
    ------
    astrofmtools.InputError
        If ``name`` is not a string or ``factory`` is not callable.

    Examples
    --------
    >>> import numpy as np
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from astrofmtools.io import SCHEDULERS, map_tiles, plan_tiles, register_scheduler
    >>> register_scheduler("two-threads", lambda workers: ThreadPoolExecutor(2))
    >>> map_tiles(lambda t: t.index, (np.ones((50, 50)), None), plan_tiles((50, 50), 32, 8),
    ...           scheduler="two-threads")
    [0, 1, 2, 3]
    >>> SCHEDULERS.remove("two-threads")
    """
    if not callable(factory):
        raise InputError(f"A scheduler's factory must be callable (workers -> executor), not "
                         f"{type(factory).__name__}.")
    SCHEDULERS.add(name, factory, overwrite=overwrite)


def _executor(scheduler, workers):
    """(context manager giving an executor, the number of tasks to keep in flight)."""
    cpus = os.cpu_count() or 1
    if scheduler is None:
        scheduler = "serial"
    if isinstance(scheduler, str):
        if scheduler not in SCHEDULERS:
            raise InputError(f"Unknown scheduler {scheduler!r}; choose one of "
                             f"{', '.join(SCHEDULERS)}, or pass an executor "
                             "(an object with a submit method, such as a "
                             "concurrent.futures.Executor or a dask.distributed.Client).")
        executor = SCHEDULERS.lookup(scheduler)(workers)
        return executor, 1 if isinstance(executor, _SerialExecutor) else 2 * (workers or cpus)
    if not callable(getattr(scheduler, "submit", None)):
        raise InputError(f"scheduler must be a name ({', '.join(SCHEDULERS)}) "
                         f"or an object with a submit method (a concurrent.futures.Executor, a "
                         f"dask.distributed.Client), not a {type(scheduler).__name__}.")
    # an executor the caller made: use it, leave it open
    n = workers or getattr(scheduler, "_max_workers", None) or cpus
    return contextlib.nullcontext(scheduler), 2 * n
