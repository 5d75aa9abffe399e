# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Work on large images in overlapping tiles: one plan, one reader, one ownership rule,
one map.

Every stage that walks a mosaic tile by tile uses these four pieces:

1. `plan_tiles` cuts the image into overlapping tiles, up front; each tile's
   *core* is the part it owns, and the cores cover the image exactly once;
2. `read_tile` reads a tile's pixels (a native-byte-order float copy, from an
   array in memory, a memory map or any lazy array) with its own copy of the
   WCS;
3. `owned` says which objects a tile keeps: those whose centre falls in its
   core, so that an object seen by several tiles is kept once;
4. `map_tiles` maps a function over the tiles, which are independent of one
   another, serially, on threads, or on any executor (a
   `concurrent.futures.Executor`, a ``dask.distributed.Client``), and returns
   the results in tile order: the same results whatever the scheduler.
"""

import collections
import concurrent.futures
import contextlib
import numbers
import os
import warnings
from typing import NamedTuple

import numpy as np

from ..exceptions import InputError
from ..utils.registry import Registry
from ..utils import progress

__all__ = ["Tile", "plan_tiles", "tile_grid", "read_tile", "owned", "map_tiles",
           "iter_tiles", "register_scheduler", "SCHEDULERS"]


class Tile(NamedTuple):
    """
    One tile of a mosaic: where it is and, once read, its pixels.

    `plan_tiles` makes tiles without pixels (``data``, ``wcs`` and ``mask``
    None); `read_tile` returns the same tile with them.

    Attributes
    ----------
    index : int
        Running number of the tile (row-major, from 0).
    slices : tuple of slice
        ``(y, x)`` slices of the tile, overlap included, in the mosaic.
    core : tuple of slice
        ``(y, x)`` slices, in the mosaic, of the part this tile owns: tiles'
        cores cover the mosaic exactly once, so an object whose centre falls
        in a tile's core is kept from that tile only (see `owned`).
    data : `~numpy.ndarray` or None
        The tile's pixels, a native-byte-order float copy (``(C, h, w)``
        for a multi-band image).
    wcs : `~astropy.wcs.WCS` or None
        The tile's own WCS: a deep copy, safe to use from another thread.
    mask : `~numpy.ndarray` or None
        The tile's no-data mask (True = no data), when the image has one.
    """

    index: int
    slices: tuple
    core: tuple
    data: np.ndarray = None
    wcs: object = None
    mask: np.ndarray = None

    @property
    def origin(self):
        """``(y0, x0)``: add to tile pixel positions to get mosaic positions."""
        return self.slices[0].start, self.slices[1].start

    @property
    def shape(self):
        """``(ny, nx)`` of the tile, overlap included."""
        return tuple(s.stop - s.start for s in self.slices)


def tile_grid(shape, tile_size=1024, overlap=64):
    """
    The ``(slices, core)`` pairs that cover an image with overlapping tiles.

    The same grid as `plan_tiles`, as plain pairs of slices.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image (for a longer shape, its last two axes).
    tile_size : int, optional
        Side of a tile, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles; make it larger than the largest
        object so that every object lies whole inside some tile.

    Returns
    -------
    grid : list of tuple
        ``(slices, core)`` for each tile, row-major.

    Raises
    ------
    astrofmtools.InputError
        For a tile size that is not positive, or an overlap outside
        ``[0, tile_size)``.

    Examples
    --------
    >>> from astrofmtools.io import tile_grid
    >>> grid = tile_grid((100, 250), tile_size=100, overlap=20)
    >>> len(grid)
    3
    >>> grid[1]  # doctest: +NORMALIZE_WHITESPACE
    ((slice(0, 100, None), slice(80, 180, None)),
     (slice(0, 100, None), slice(90, 165, None)))
    """
    if (not isinstance(tile_size, numbers.Integral) or not isinstance(overlap, numbers.Integral)
            or tile_size <= 0 or overlap < 0 or overlap >= tile_size):
        raise InputError(f"tile_size must be a positive integer and overlap an integer in "
                         f"[0, tile_size); got tile_size={tile_size!r}, overlap={overlap!r}.")
    shape = tuple(int(n) for n in shape)[-2:]
    if len(shape) != 2 or min(shape) <= 0:
        raise InputError(f"Tiles need a non-empty 2-D shape (ny, nx), not {shape}.")
    axes = []
    for n in shape:
        step = tile_size - overlap
        starts = list(range(0, max(n - tile_size, 0) + 1, step))
        if starts[-1] + tile_size < n:
            starts.append(n - tile_size)  # the last tile is full size too
        spans = [(s, min(s + tile_size, n)) for s in starts]
        # each boundary between cores lies in the middle of the overlap
        cuts = [0] + [(spans[i + 1][0] + spans[i][1]) // 2
                      for i in range(len(spans) - 1)] + [n]
        cores = list(zip(cuts[:-1], cuts[1:]))
        axes.append(list(zip(spans, cores)))
    grid = []
    for (ys, yc) in axes[0]:
        for (xs, xc) in axes[1]:
            grid.append(((slice(*ys), slice(*xs)), (slice(*yc), slice(*xc))))
    return grid


def plan_tiles(shape, tile_size=1024, overlap=64):
    """
    Plan the overlapping tiles that cover an image, up front.

    Each tile is at most ``tile_size`` pixels on a side (the last tile of a
    row or column is shifted back so that it is full size too) and shares
    ``overlap`` pixels with its neighbours. The boundary between two cores
    lies in the middle of their overlap, so an object smaller than half the
    overlap is seen whole by the tile that owns it.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image (for a multi-band ``(C, ny, nx)`` shape,
        its last two axes).
    tile_size : int, optional
        Side of a tile in pixels, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles.

    Returns
    -------
    tiles : list of `Tile`
        Row-major, without pixels (read them with `read_tile` or let
        `map_tiles` read them).

    Raises
    ------
    astrofmtools.InputError
        For bad settings (see `tile_grid`).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import plan_tiles
    >>> tiles = plan_tiles((200, 300), tile_size=128, overlap=16)
    >>> len(tiles), tiles[1].origin, tiles[1].shape
    (6, (0, 112), (128, 128))
    >>> tiles[1].core
    (slice(0, 100, None), slice(120, 206, None))
    >>> covered = np.zeros((200, 300), int)
    >>> for t in tiles:
    ...     covered[t.core] += 1
    >>> bool((covered == 1).all())  # the cores cover the image exactly once
    True
    """
    return [Tile(i, slices, core)
            for i, (slices, core) in enumerate(tile_grid(shape, tile_size, overlap))]


class _Source(NamedTuple):
    """What tiles are read from: pixels, WCS, no-data mask and a name."""

    data: object
    wcs: object
    mask: object
    name: str


def _as_source(image):
    """Parse an image, or a plain (memory-mapped, lazy) array, once."""
    from .image import SkyImage
    from .load import load_image
    if isinstance(image, _Source):
        return image
    if isinstance(image, SkyImage):
        return _Source(image.data, image.wcs, image.mask, image.source)
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image, memmap=True)
        return _Source(image.data, image.wcs, image.mask, image.source)
    if hasattr(image, "shape") and hasattr(image, "__getitem__") and not isinstance(image,
                                                                                  tuple):
        if len(image.shape) not in (2, 3):
            raise InputError(f"Tiles are cut from 2-D (ny, nx) or (C, ny, nx) arrays; this "
                             f"array has shape {tuple(image.shape)}.")
        return _Source(image, None, None, f"<{type(image).__name__}>")
    image = load_image(image)
    return _Source(image.data, image.wcs, image.mask, image.source)


def _read(source, tile, dtype=None):
    sl = (Ellipsis,) + tuple(tile.slices)
    block = np.asarray(source.data[sl])  # a memory map or lazy array is read here only
    if dtype is not None:
        block = np.array(block, dtype=dtype)
    elif block.dtype.kind != "f" or not block.dtype.isnative:
        block = block.astype(np.float32 if block.dtype.itemsize <= 4 else np.float64)
    else:
        block = block.copy()
    # slicing a WCS deep-copies it: each tile gets its own (astropy WCS is not thread-safe)
    wcs = source.wcs[tuple(tile.slices)] if source.wcs is not None else None
    mask = None if source.mask is None else np.array(np.asarray(source.mask)[sl], dtype=bool)
    return tile._replace(data=block, wcs=wcs, mask=mask)


def read_tile(image, tile, dtype=None):
    """
    Read one tile's pixels, WCS and no-data mask.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`, array or any input of `~astrofmtools.io.load_image`
        The mosaic: an image, or a 2-D (or ``(C, ny, nx)``) array of any
        kind that can be sliced: in memory, memory-mapped (``np.memmap``, the
        data of a FITS file opened with ``memmap=True``), an
        ``astropy.io.fits`` section, an HDF5 dataset, a Dask array. A file
        name is opened memory-mapped.
    tile : `Tile`
        The tile, from `plan_tiles`.
    dtype : dtype, optional
        The float type of the pixels. By default the image's float type
        (float32 for integer pixels of up to 4 bytes, float64 for longer
        ones), in native byte order.

    Returns
    -------
    tile : `Tile`
        The same tile with ``data`` (a copy: writing to it leaves the image
        alone), ``wcs`` (a deep copy shifted to the tile's origin, or None)
        and ``mask`` (or None) filled in.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import plan_tiles, read_tile
    >>> data = np.arange(200.0 * 300).reshape(200, 300).astype(">f4")  # big-endian, as FITS
    >>> tile = read_tile(data, plan_tiles(data.shape, 128, 16)[1])
    >>> tile.data.shape, tile.data.dtype.isnative, float(tile.data[0, 0] - data[0, 112])
    ((128, 128), True, 0.0)
    """
    return _read(_as_source(image), tile, dtype)


def owned(tile, x, y, margin=0):
    """
    Whether objects centred at ``(x, y)`` belong to a tile.

    The ownership rule of every tiled stage: an object belongs to the tile
    whose core holds its centre, so each position belongs to exactly one
    tile of a plan. Positions are 0-based pixels of the *mosaic* (pixel
    ``i`` spans ``[i - 0.5, i + 0.5)``).

    Parameters
    ----------
    tile : `Tile`
        The tile.
    x, y : float or array
        Centres in mosaic pixels.
    margin : int, optional
        Grow the core by this many pixels on its sides that face another
        tile (never beyond the tile): a tile then also keeps objects just
        beyond its core, so that an object whose centre two tiles measure
        slightly differently is not dropped by both. The caller removes the
        duplicates that this makes (e.g. by non-maximum suppression).

    Returns
    -------
    keep : bool or array of bool

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import owned, plan_tiles
    >>> tiles = plan_tiles((100, 250), tile_size=100, overlap=20)
    >>> x = np.array([10.0, 89.4, 89.5, 240.0])
    >>> np.array([owned(t, x, 50.0) for t in tiles]).astype(int)  # one owner per position
    array([[1, 1, 0, 0],
           [0, 0, 1, 0],
           [0, 0, 0, 1]])
    """
    (ylo, yhi), (xlo, xhi) = (_grown(c, s, margin) for c, s in zip(tile.core, tile.slices))
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    return (x >= xlo - 0.5) & (x < xhi - 0.5) & (y >= ylo - 0.5) & (y < yhi - 0.5)


def _grown(core, span, margin):
    """The core's [start, stop) grown by margin on the sides that face a neighbour."""
    lo = max(core.start - margin, span.start) if core.start > span.start else core.start
    hi = min(core.stop + margin, span.stop) if core.stop < span.stop else core.stop
    return lo, hi


# --------------------------------------------------------------------------- schedulers


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
    cluster. Tiles are read in the calling thread, and at most a few per
    worker are in flight at a time, so memory is bounded by the tile size,
    not by the image. A progress bar counts the tiles on a terminal.

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
        or torch, which release the GIL), another name given to
        `register_scheduler`, or an executor you made: any object with a
        ``submit(fn, *args)`` method returning futures with ``result()``,
        such as a `concurrent.futures.Executor` or a
        ``dask.distributed.Client`` (left open afterwards).
    workers : int, optional
        Threads of the ``"threads"`` scheduler (default: the number of
        CPUs); for any scheduler, twice this many tasks are kept in flight.
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
    if workers is not None and (not isinstance(workers, numbers.Integral)
                                or isinstance(workers, bool) or workers < 1):
        raise InputError(f"workers must be a positive integer, not {workers!r}.")
    if batch_size is not None and (not isinstance(batch_size, numbers.Integral)
                                   or isinstance(batch_size, bool) or batch_size < 1):
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}.")
    tiles = list(tiles)
    if not all(isinstance(t, Tile) for t in tiles):
        raise InputError("map_tiles needs a list of Tile (from plan_tiles).")
    source = _as_source(image)
    size = batch_size or 1
    batches = [tiles[i:i + size] for i in range(0, len(tiles), size)]
    context, in_flight = _executor(scheduler, workers)
    results = []
    pending = collections.deque()
    bar = progress(total=len(tiles), desc=desc, unit="tile")

    def collect():
        future, n = pending.popleft()
        out = future.result()
        results.extend(out if batch_size else [out])
        bar.update(n)

    try:
        with warnings.catch_warnings(), context as executor:
            for category in ignore_warnings:
                warnings.simplefilter("ignore", category)
            try:
                for batch in batches:
                    read = [_read(source, t, dtype) for t in batch]
                    if batch_size:
                        future = executor.submit(_run_batch, func, read)
                    else:
                        future = executor.submit(func, read[0])
                    pending.append((future, len(batch)))
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


def iter_tiles(image, tile_size=1024, overlap=64):
    """
    Iterate over an image in overlapping tiles.

    Only one tile is in memory at a time, so a memory-mapped mosaic larger
    than memory can be processed. The tiles are those of `plan_tiles`, read
    with `read_tile`; `map_tiles` maps a function over them, on threads or a
    cluster if asked.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`, array or any input of `~astrofmtools.io.load_image`
        The mosaic. A file name is opened memory-mapped.
    tile_size : int, optional
        Side of a tile in pixels, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles.

    Yields
    ------
    tile : `Tile`
        The tile's index, slices, core, pixels (float, native byte order,
        NaN where there is no data), WCS and no-data mask.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import iter_tiles, load_image
    >>> image = load_image((np.arange(300.0 * 200).reshape(200, 300), None))
    >>> tiles = list(iter_tiles(image, tile_size=128, overlap=16))
    >>> len(tiles), tiles[1].origin, tiles[1].data.shape
    (6, (0, 112), (128, 128))
    """
    source = _as_source(image)
    for tile in plan_tiles(np.shape(source.data), tile_size, overlap):
        yield _read(source, tile)
