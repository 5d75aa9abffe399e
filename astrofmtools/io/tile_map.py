# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Map a function over the independent tiles of an image (`map_tiles`):
results in tile order, the same whatever the scheduler.
"""

import collections
import numbers
import warnings

from ..exceptions import InputError
from ..utils import progress
from .lazy import FitsPixels
from .schedulers import _executor
from .tile_reader import _as_source, _read
from .tiles import Tile

__all__ = ["map_tiles", "map_tasks"]


def _run(func, source, batch, dtype, batched):
    """Run ``func`` on a batch of tiles, reading their pixels first when given the source."""
    if source is not None:
        batch = [_read(source, t, dtype) for t in batch]
    return _run_batch(func, batch) if batched else func(batch[0])


def _run_batch(func, tiles):
    results = func(tiles)
    try:
        n = len(results)
    except TypeError:
        n = None
    if n != len(tiles):
        raise InputError(f"With batch_size, map_tiles' function is given a list of tiles and "
                         f"must return a list with one result per tile; given {len(tiles)} "
                         f"tile(s), it returned a {type(results).__name__}"
                         + (f" of length {n}." if n is not None else "."))
    return list(results)


def map_tiles(func, image, tiles, scheduler=None, *, workers=None, batch_size=None, dtype=None,
              ignore_warnings=(), desc="tiles"):
    """
    Map a function over independent tiles of an image; results in tile order.

    Each tile is read (`read_tile`: a float copy of its pixels, its own WCS,
    its no-data mask) and handed to ``func``. Tiles are independent, so the
    scheduler only decides where ``func`` runs: the results, returned in
    the order of ``tiles``, are the same serially, on threads or on a Dask
    cluster. Tiles of an image read on demand from its file (a
    `~astrofmtools.io.FitsPixels`, the default for large files) are read
    where their task runs, so a Dask worker reads its own tiles from the
    shared file system; other tiles are read in the calling thread and
    sent. At most a few tiles per worker are in flight at a time, so memory
    is bounded by the tile size, not by the image. A progress bar counts
    the tiles on a terminal.

    Parameters
    ----------
    func : callable
        ``func(tile) -> result``, given a `Tile` with its pixels; with
        ``batch_size``, ``func(list of tiles) -> list of results`` (one per
        tile). It must not depend on other tiles or on the order tiles run
        in. To run on a Dask cluster it must be picklable.
    image : `~astrofmtools.io.SkyImage`, array or any input of `~astrofmtools.io.load_image`
        The mosaic, or an array of any kind that can be sliced (see
        `read_tile`). A file name is opened memory-mapped.
    tiles : list of `Tile`
        The tiles, from `plan_tiles`.
    scheduler : str or executor, optional
        Where ``func`` runs: ``None`` or ``"serial"`` (in this thread, one
        tile at a time), ``"threads"`` (a thread pool of ``workers``
        threads: worthwhile when ``func`` spends its time in numpy, scipy
        or torch, which release the GIL),
        ``"dask"`` (a local Dask cluster of ``workers`` single-threaded
        processes, started and closed here), the address of a running Dask
        scheduler (``"tcp://host:8786"``, or its scheduler file ``.json``),
        another name given to `register_scheduler`, or an executor you
        made: any object with a ``submit(fn, *args)`` method returning
        futures with ``result()``, such as a `concurrent.futures.Executor`
        or a ``dask.distributed.Client`` (left open afterwards).
    workers : int, optional
        Threads of the ``"threads"`` scheduler, processes of the ``"dask"``
        one (default: the number of CPUs); for any scheduler, twice this
        many tasks are kept in flight.
    batch_size : int, optional
        Hand ``func`` lists of up to this many tiles (for a model that
        predicts batches); tiles run one by one by default.
    dtype : dtype, optional
        Float type of the tiles' pixels (see `read_tile`).
    ignore_warnings : tuple of type, optional
        Warning categories to ignore while the tiles run. Python's
        `warnings.catch_warnings` is not thread-safe (before Python 3.14):
        when ``func``, or the libraries it calls, silence warnings with it,
        threads running at once can let them through (an error under
        ``-W error``). Name those categories here: they are ignored around
        the whole map, with every scheduler, so serial and threaded runs
        behave alike.
    desc : str, optional
        Text of the progress bar.

    Returns
    -------
    results : list
        ``func``'s result for each tile, in the order of ``tiles``.

    Raises
    ------
    astrofmtools.InputError
        For an unknown scheduler or bad settings. Errors raised by ``func``
        propagate (the tiles not yet started are cancelled).

    Examples
    --------
    The sum of each tile's core, serially and on two threads:

    >>> import numpy as np
    >>> from astrofmtools.io import map_tiles, plan_tiles
    >>> data = np.arange(300.0 * 200).reshape(200, 300)
    >>> tiles = plan_tiles(data.shape, tile_size=128, overlap=16)
    >>> def core_sum(tile):
    ...     (y0, x0), (cy, cx) = tile.origin, tile.core
    ...     return tile.data[cy.start - y0:cy.stop - y0, cx.start - x0:cx.stop - x0].sum()
    >>> serial = map_tiles(core_sum, data, tiles)
    >>> threaded = map_tiles(core_sum, data, tiles, scheduler="threads", workers=2)
    >>> serial == threaded, bool(sum(serial) == data.sum())
    (True, True)
    """
    if not callable(func):
        raise InputError(f"map_tiles needs a function of a tile, not a {type(func).__name__}.")
    _check_positive(workers=workers, batch_size=batch_size)
    tiles = list(tiles)
    if not all(isinstance(t, Tile) for t in tiles):
        raise InputError("map_tiles needs a list of Tile (from plan_tiles).")
    source = _as_source(image)
    # pixels read on demand from a file are read where the task runs (a thread or a
    # Dask worker): only the tile's description travels
    remote = isinstance(source.data, FitsPixels)
    size = batch_size or 1
    batches = [tiles[i:i + size] for i in range(0, len(tiles), size)]

    def calls():
        for batch in batches:
            read = batch if remote else [_read(source, t, dtype) for t in batch]
            yield (func, source if remote else None, read, dtype, bool(batch_size)), len(batch)

    results = _map_calls(_run, calls(), len(tiles), scheduler, workers, ignore_warnings, desc,
                         "tile")
    return [r for part in results for r in part] if batch_size else results


def map_tasks(func, items, scheduler=None, *, workers=None, common=None, ignore_warnings=(),
              desc="tasks"):
    """
    Map a function over independent items (chunks of cutouts, input files); results in order.

    The counterpart of `map_tiles` for work that is not cut from one
    image: each item is one task, run where ``scheduler`` says, and the
    results come back in the order of ``items`` whatever the scheduler.

    Parameters
    ----------
    func : callable
        ``func(item) -> result``; picklable to run on a Dask cluster.
    items : sequence
        The items; each is sent with its task.
    scheduler : str or executor, optional
        As for `map_tiles`: ``None``/``"serial"``, ``"threads"``,
        ``"dask"``, a Dask scheduler's address, or an executor.
    workers : int, optional
        Threads or local Dask workers.
    common : object, optional
        Something every task needs, such as a model: ``func`` is then called
        as ``func(item, common)``, and on a Dask cluster ``common`` is sent
        to each worker once (scattered) instead of with every task.
    ignore_warnings : tuple of type, optional
        Warning categories to ignore around the whole map (see `map_tiles`).
    desc : str, optional
        Text of the progress bar.

    Returns
    -------
    results : list

    Examples
    --------
    >>> from astrofmtools.io import map_tasks
    >>> map_tasks(sum, [[1, 2], [3, 4], [5]], scheduler="threads", workers=2)
    [3, 7, 5]
    """
    if not callable(func):
        raise InputError(f"map_tasks needs a function, not a {type(func).__name__}.")
    _check_positive(workers=workers)
    items = list(items)
    extra = () if common is None else (common,)
    return _map_calls(func, (((item,) + extra, 1) for item in items), len(items), scheduler,
                      workers, ignore_warnings, desc, "task", shared=bool(extra))


def _check_positive(**values):
    for name, value in values.items():
        if value is not None and (not isinstance(value, numbers.Integral)
                                  or isinstance(value, bool) or value < 1):
            raise InputError(f"{name} must be a positive integer, not {value!r}.")


def _map_calls(fn, calls, total, scheduler, workers, ignore_warnings, desc, unit, shared=False):
    """
    Submit ``fn(*args)`` for each ``(args, count)`` of ``calls``, a few at a time; in order.

    With ``shared``, the last argument is the same object in every call: an
    executor that can share it (a Dask client) sends it once.
    """
    context, in_flight = _executor(scheduler, workers)
    results = []
    pending = collections.deque()
    bar = progress(total=total, desc=desc, unit=unit)

    def collect():
        future, n = pending.popleft()
        results.append(future.result())
        bar.update(n)

    try:
        with warnings.catch_warnings(), context as executor:
            for category in ignore_warnings:
                warnings.simplefilter("ignore", category)
            try:
                common = None
                for args, n in calls:
                    if shared:
                        if common is None:
                            common = getattr(executor, "share", lambda obj: obj)(args[-1])
                        args = args[:-1] + (common,)
                    pending.append((executor.submit(fn, *args), n))
                    while len(pending) >= in_flight:
                        collect()
                while pending:
                    collect()
            except BaseException:
                for future, _ in pending:
                    future.cancel()
                raise
    finally:
        bar.close()
    return results
