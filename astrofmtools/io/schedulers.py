# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Where `map_tiles` runs its function: named schedulers (``serial``,
``threads``, ``dask`` and those added with `register_scheduler`), the
address of a Dask scheduler, or an executor.
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


class _DaskExecutor:
    """
    A ``dask.distributed.Client`` as an executor.

    Tasks are submitted as impure (two tiles with equal pixels are still two
    tasks), and the client and cluster this executor started are closed on
    leaving its context; a client the caller made is left open.
    """

    def __init__(self, client, owned=()):
        self.client, self._owned = client, owned

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for thing in self._owned:
            thing.close()
        return False

    def submit(self, fn, *args, **kwargs):
        return self.client.submit(fn, *args, pure=False, **kwargs)

    def share(self, obj):
        """Send ``obj`` to every worker once; tasks given the returned future get ``obj``."""
        return self.client.scatter(obj, broadcast=True, hash=False)

    @property
    def _max_workers(self):
        return max(1, sum(self.client.nthreads().values()))


#: How long to wait for a Dask scheduler at an address before giving up.
CONNECT_TIMEOUT = "10s"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise InputError("The Dask schedulers need dask.distributed: pip install "
                         "'astrofmtools[scale]' (or pip install distributed).") from None
    return distributed


def _dask_local(workers):
    """A LocalCluster of ``workers`` single-threaded processes, closed afterwards."""
    import logging
    distributed = _distributed()
    cluster = distributed.LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                       threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    return _DaskExecutor(client, owned=(client, cluster))


def _dask_address(address):
    """A client of a running Dask scheduler (an address or a scheduler file)."""
    distributed = _distributed()
    try:
        if address.endswith(".json"):
            client = distributed.Client(scheduler_file=address, timeout=CONNECT_TIMEOUT)
        else:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"Cannot reach the Dask scheduler at {address!r} ({exc}). Start one "
                         "with 'dask scheduler' (and 'dask worker ADDRESS' on each node), or "
                         "use scheduler='dask' for a local cluster.") from None
    return _DaskExecutor(client, owned=(client,))


def is_scheduler_address(text):
    """Whether a scheduler name is the address of a Dask scheduler (or its scheduler file)."""
    return isinstance(text, str) and ("://" in text or text.endswith(".json"))


#: Scheduler name -> factory ``factory(workers)`` returning a context manager
#: that gives an executor (an object whose ``submit(fn, *args)`` returns a
#: future with ``result()``); add one with `register_scheduler`.
SCHEDULERS = Registry("scheduler")
SCHEDULERS.add("serial", lambda workers: _SerialExecutor())
SCHEDULERS.add("threads", _threads)
SCHEDULERS.add("dask", _dask_local)


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
    if is_scheduler_address(scheduler):
        executor = _dask_address(scheduler)
        return executor, 2 * executor._max_workers
    if isinstance(scheduler, str):
        if scheduler not in SCHEDULERS:
            raise InputError(f"Unknown scheduler {scheduler!r}; choose one of "
                             f"{', '.join(SCHEDULERS)}, a Dask scheduler's address "
                             "(tcp://host:8786) or scheduler file (.json), or pass an executor "
                             "(an object with a submit method, such as a "
                             "concurrent.futures.Executor or a dask.distributed.Client).")
        executor = SCHEDULERS.lookup(scheduler)(workers)
        if isinstance(executor, _SerialExecutor):
            return executor, 1
        return executor, 2 * (workers or getattr(executor, "_max_workers", None) or cpus)
    if not callable(getattr(scheduler, "submit", None)):
        raise InputError(f"scheduler must be a name ({', '.join(SCHEDULERS)}) "
                         f"or an object with a submit method (a concurrent.futures.Executor, a "
                         f"dask.distributed.Client), not a {type(scheduler).__name__}.")
    if type(scheduler).__module__.startswith("distributed"):
        scheduler = _DaskExecutor(scheduler)  # the caller's client: impure tasks, left open
    # an executor the caller made: use it, leave it open
    n = workers or getattr(scheduler, "_max_workers", None) or cpus
    return contextlib.nullcontext(scheduler), 2 * n
