# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The queries of a similarity search: source ids, sky positions (the nearest
source) or images (embedded as the features were).
"""

import logging
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord

from ..exceptions import InputError
from ..schema import parse_positions

__all__ = []

log = logging.getLogger("astrofmtools")


def _sky_coords(table):
    """ICRS positions of the rows that have one, their row numbers, and where they came from."""
    pos = parse_positions(table, kind="sky", name="the embedding's table", required=False)
    if pos is None:
        raise InputError("A query by sky position needs sky positions in the embedding's "
                         "table: a SkyCoord column (e.g. 'sky_centroid') or longitude/latitude "
                         "columns (ra/dec, RAJ2000/DEJ2000, GLON/GLAT, l/b...); its columns are "
                         f"{', '.join(table.colnames)}.")
    return pos.sky[pos.valid], np.flatnonzero(pos.valid), pos.describe()


def _is_image_query(query):
    if isinstance(query, (str, bytes, SkyCoord)) or np.isscalar(query):
        return False
    if hasattr(query, "data") and hasattr(query, "table") and not isinstance(query, np.ndarray):
        return True  # a CutoutStack
    if hasattr(query, "detach") and hasattr(query, "shape"):
        return len(query.shape) >= 2  # a torch tensor
    try:
        arr = np.asarray(query)
    except (TypeError, ValueError):
        return False
    return arr.ndim >= 2 and arr.dtype.kind in "fiub"


def _queries(emb, query, column, max_separation):
    """(kind, rows, records): rows (M,) of source queries and their records; for an image
    query ("image", None, the images)."""
    if _is_image_query(query):
        return "image", None, query
    if isinstance(query, SkyCoord):
        coords, valid_rows, name = _sky_coords(emb.table)
        positions = query.reshape(-1) if not query.isscalar else query.reshape((1,))
        if len(coords) == 0:
            raise InputError("The embedding has no rows to search (with a sky position).")
        rows, sep, _ = positions.match_to_catalog_sky(coords)
        rows = valid_rows[np.atleast_1d(rows).astype(np.int64)]
        sep = np.atleast_1d(sep.to(u.arcsec))
        if max_separation is not None:
            limit = u.Quantity(max_separation, u.arcsec)
            far = sep > limit
            if far.any():
                j = int(np.flatnonzero(far)[0])
                raise InputError(f"No source within {limit:g} of the query position "
                                 f"{positions[j].to_string('decimal', precision=6)}: the "
                                 f"nearest (from {name}) is {sep[j]:.3g} away.")
        records = []
        for j, (row, s) in enumerate(zip(rows, sep)):
            pos = positions[j].icrs
            records.append({"kind": "position", "ra_deg": float(pos.ra.deg),
                            "dec_deg": float(pos.dec.deg), "row": int(row),
                            "id": _plain(emb.table[column][row]) if column in emb.table.colnames
                            else None, "separation_arcsec": float(s.value)})
        return "position", rows, records
    ids = [query] if isinstance(query, (str, bytes)) or np.isscalar(query) else list(query)
    if not ids:
        raise InputError("query is empty: give a source id, a list of ids, a SkyCoord or an "
                         "image.")
    for value in ids:
        if isinstance(value, (bool, np.bool_)) or not (
                isinstance(value, (str, bytes)) or np.isscalar(value)):
            raise InputError(f"A source id must be an integer or a string, not {value!r}.")
    rows = np.array([emb.index_of(value, column=column) for value in ids], dtype=np.int64)
    records = [{"kind": "id", column: _plain(value), "row": int(row)}
               for value, row in zip(ids, rows)]
    return "id", rows, records


def _plain(value):
    """A JSON/YAML-friendly Python scalar."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def _backbone_from_meta(meta, device):
    """Load the backbone recorded in an embedding's meta."""
    from ..backbones import load_backbone
    name = meta.get("backbone")
    if not name:
        raise InputError("A query by image needs the backbone that made the features, and the "
                         "embedding's meta names none: pass model=<the same Backbone>.")
    recorded = str(meta.get("weights") or "")
    if recorded == "random":
        raise InputError(f"The features were made with randomly initialised {name!r} weights, "
                         "which cannot be rebuilt: pass model=<the same Backbone object>.")
    weights = None
    for candidate in (recorded, recorded.rsplit(": ", 1)[-1]):
        if candidate and Path(candidate).is_file():
            weights = candidate
            break
    backbone = load_backbone(name, weights=weights, device=device,
                             in_chans=int(meta.get("in_chans", 3)))
    if recorded and backbone.weights != recorded and weights is None:
        log.info("features made with weights %s; query images embedded with %s", recorded,
                 backbone.weights)
    return backbone


def _embed_images(emb, images, model, device, batch_size):
    """Feature vectors of query images, made as the embedding's were."""
    from ..backbones import Backbone, extract_features
    from ..backbones.preprocess import Preprocess
    from ..cutouts import parse_cutouts
    data, _ = parse_cutouts(images, index_table=False)
    meta = emb.meta
    if isinstance(model, Backbone):
        backbone = model
        if meta.get("backbone") and meta["backbone"] != backbone.spec.name:
            raise InputError(f"model is {backbone.spec.name!r} but the features were made with "
                             f"{meta['backbone']!r}.")
    elif model is None:
        backbone = _backbone_from_meta(meta, device)
    else:
        raise InputError(f"model must be a loaded Backbone (or None: the one named in the "
                         f"embedding's meta), not {type(model).__name__}.")
    preprocess = meta.get("preprocess")
    preprocess = (Preprocess.from_dict(preprocess) if isinstance(preprocess, dict)
                  else backbone.default_preprocess())
    if preprocess.zoom == "auto":
        raise InputError("The embedding's preprocessing has zoom='auto' without the value it "
                         "resolved to; re-embed with astrofmtools.embed.embed, which records "
                         "it.")
    features = extract_features(backbone, data, pooling=meta.get("pooling"),
                                batch_size=batch_size, device=device, preprocess=preprocess,
                                cache=False, tta=bool(meta.get("tta", False)))
    if features.shape[1] != emb.features.shape[1]:
        raise InputError(f"The query images give {features.shape[1]} features, the embedding "
                         f"has {emb.features.shape[1]}: not the same backbone or pooling.")
    return data, features
