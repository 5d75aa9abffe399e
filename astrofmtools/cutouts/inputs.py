# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""One parser of the cutout inputs every stage accepts."""

import numpy as np
from astropy.table import QTable

from ..exceptions import InputError
from .stack import CutoutStack

__all__ = ["parse_cutouts"]


def parse_cutouts(cutouts, what="cutouts", keep_stack=False, index_table=True,
                  single_image=True):
    """
    Parse what the feature, classification and map stages accept as cutouts.

    Parameters
    ----------
    cutouts : `CutoutStack`, list of them, array or tensor
        A stack, a list of stacks (concatenated), or an ``(N, H, W)``,
        ``(N, C, H, W)`` or ``(N, H, W, C)`` array (or torch tensor) of raw
        pixels; one ``(H, W)`` image is one cutout (with ``single_image``). A trailing axis of at
        most 4 after two larger ones is read as channels (``N, H, W, C``).
    what : str, optional
        How error messages name the input.
    keep_stack : bool, optional
        Return a stack as it is (its table and per-cutout scales travel with
        it) instead of its pixel array.
    single_image : bool, optional
        Accept one 2-D image as a stack of one (else a 2-D array is refused).
    index_table : bool, optional
        For an array: return a table with an ``index`` column (else None).

    Returns
    -------
    inputs : `CutoutStack` or `~numpy.ndarray`
        The stack (with ``keep_stack``) or a float32 ``(N, H, W)`` /
        ``(N, C, H, W)`` array.
    table : `~astropy.table.QTable`
        The stack's table, or for an array one ``index`` column (the row of
        the array; None without ``index_table``).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.cutouts import parse_cutouts
    >>> data, table = parse_cutouts(np.zeros((5, 16, 16, 3)))
    >>> data.shape, table.colnames
    ((5, 3, 16, 16), ['index'])
    """
    if isinstance(cutouts, (list, tuple)) and cutouts and all(
            isinstance(c, CutoutStack) for c in cutouts):
        cutouts = CutoutStack.concatenate(list(cutouts))
    elif isinstance(cutouts, (list, tuple)) and any(isinstance(c, CutoutStack) for c in cutouts):
        raise InputError(f"{what}: a list must hold only CutoutStacks.")
    if isinstance(cutouts, CutoutStack):
        if keep_stack:
            return cutouts, cutouts.table
        data, table = cutouts.data, cutouts.table
    else:
        if hasattr(cutouts, "detach") and hasattr(cutouts, "cpu"):  # a torch tensor
            cutouts = cutouts.detach().cpu().numpy()
        try:
            data = np.asarray(cutouts)
        except (TypeError, ValueError):
            data = None
        if data is None or data.dtype.kind not in "fiub":
            raise InputError(f"{what} must be a CutoutStack, a list of them, or an (N, H, W), "
                             f"(N, H, W, C) or (N, C, H, W) array of numbers; got "
                             f"{type(cutouts).__name__}.")
        table = None
    if data.ndim == 2 and single_image:
        data = data[None]
    if data.ndim == 4 and data.shape[-1] <= 4 < min(data.shape[1], data.shape[2]):
        data = np.moveaxis(data, -1, 1)  # N, H, W, C -> N, C, H, W
    if data.ndim not in (3, 4) or data.shape[0] == 0 or min(data.shape[-2:]) < 2:
        raise InputError(f"{what} must be an (N, H, W), (N, H, W, C) or (N, C, H, W) array "
                         f"with N >= 1 and H, W >= 2; got shape {data.shape}.")
    data = np.ascontiguousarray(data, dtype=np.float32)
    if table is None and index_table:
        table = QTable({"index": np.arange(len(data))})
        table["index"].description = "row of the input array (0-based)"
    return data, table
