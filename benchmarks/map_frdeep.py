"""
UMAP of FR-DEEP FIRST radio galaxies in foundation-model feature space, coloured by FR class.

Extracts features of the 600 FIRST cutouts (550 train + 50 test, 150x150,
0 = FRI, 1 = FRII) with each backbone, maps them with PCA -> UMAP
(`astrofmtools.embed.umap_map`) under a few settings, and prints how well
each space keeps the two classes apart: the kNN class purity (mean
fraction of each galaxy's 10 nearest neighbours of its own class) in the
scaled feature space, after PCA, and in the 2-D map, beside chance (the
purity of randomly mixed classes). Writes the map of the first backbone
with the default settings as a PNG (the picture in docs/maps.rst). Run by
hand:

    python benchmarks/map_frdeep.py [--data ../shared/data/frdeep/frdeep_first.npz]
        [--png docs/_static/umap_frdeep.png] [--overwrite]
        [--backbones efficientnet_lite0 dinov2_vits14] [--dinov2 PATH] [--device cpu]

FR-DEEP: Tang, Scaife & Leahy (2019), arXiv:1903.11921; FIRST images
(Becker, White & Helfand 1995). The DINOv2 checkpoint in shared/weights
is a third-party DINOv2-architecture ViT-S/14 (see its README), used only
when present.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from _frdeep import add_frdeep_arguments, backbone_weights, load_frdeep

DEFAULT_PNG = Path(__file__).resolve().parent.parent / "docs" / "_static" / "umap_frdeep.png"
SETTINGS = [("l2", False), ("l2", True), ("standard", False), (None, False)]


def frdeep_table(path):
    """The FR-DEEP images and a table of their row, class and split."""
    from astropy.table import QTable
    images, labels, split = load_frdeep(path)
    table = QTable({"id": np.arange(1, len(labels) + 1), "class": labels, "split": split})
    table["id"].info.description = "Row of frdeep_first.npz (1-based)"
    table["class"].info.description = "Fanaroff-Riley class (FR-DEEP label)"
    return images, table


def _scaled(features, normalize):
    """The features as FeatureMap scales them before PCA."""
    from sklearn.preprocessing import Normalizer, StandardScaler
    if normalize is None:
        return features
    scaler = Normalizer() if normalize == "l2" else StandardScaler()
    return scaler.fit_transform(features)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_frdeep_arguments(parser)
    parser.add_argument("--backbones", nargs="+", default=["efficientnet_lite0", "dinov2_vits14"])
    parser.add_argument("--device", default=None)
    parser.add_argument("--png", default=str(DEFAULT_PNG),
                        help="map of the first backbone, default settings (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace the PNG")
    parser.add_argument("--k", type=int, default=10, help="neighbours for the purity")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from astropy.table import Table
    from sklearn.decomposition import PCA
    from astrofmtools.embed import Embedding, embed, knn_purity, umap_map

    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    images, table = frdeep_table(args.data)
    labels = np.asarray(table["class"])
    fractions = np.unique(labels, return_counts=True)[1] / len(labels)
    chance = float(np.sum(fractions ** 2))
    print(f"FR-DEEP FIRST: {len(images)} images of {images.shape[1]}x{images.shape[2]}; "
          + ", ".join(f"{c}: {n}" for c, n in zip(*np.unique(labels, return_counts=True)))
          + f"; chance purity {chance:.3f}")
    rows = []
    png_written = False
    for backbone in args.backbones:
        weights = backbone_weights(backbone, args.dinov2)
        if weights is False:
            continue
        t0 = time.perf_counter()
        emb = embed(images, model=backbone, weights=weights, device=args.device, cache=False)
        embed_s = time.perf_counter() - t0
        emb = Embedding(emb.features, table, emb.meta)
        print(f"{backbone}: {emb.features.shape[1]}-D features in {embed_s:.1f} s", flush=True)
        spaces = {}
        for normalize in dict.fromkeys(n for n, _ in SETTINGS):
            scaled = _scaled(emb.features, normalize)
            pca = PCA(n_components=10, random_state=args.seed).fit_transform(scaled)
            spaces[normalize] = {s: knn_purity(x, labels, k=args.k)
                                 for s, x in (("features", scaled), ("pca", pca))}
        for normalize, balance in SETTINGS:
            t0 = time.perf_counter()
            path = None
            if not png_written and (normalize, balance) == SETTINGS[0]:
                path = args.png
            if path is not None and args.overwrite is False and Path(path).exists():
                print(f"{path} exists; not replaced (use --overwrite)")
                path = None
            title = (f"FR-DEEP FIRST: {len(emb)} radio galaxies, {backbone} features, "
                     "PCA 10 -> UMAP")
            m = umap_map(emb, color="class", normalize=normalize, balance=balance,
                         seed=args.seed, path=path, overwrite=args.overwrite, title=title)
            map_s = time.perf_counter() - t0
            png_written = png_written or path is not None
            xy = np.c_[m["map_x"], m["map_y"]]
            purity = dict(spaces[normalize])
            purity["map"], by_class = knn_purity(xy, labels, k=args.k, per_class=True)
            rows.append({"backbone": backbone, "normalize": str(normalize),
                         "balance": balance, "n_fit": int(m["map_fit"].sum()),
                         "pca_var": m.meta["explained_variance"],
                         "purity_features": purity["features"], "purity_pca": purity["pca"],
                         "purity_map": purity["map"],
                         "map_FRI": by_class["FRI"], "map_FRII": by_class["FRII"],
                         "map_s": map_s})
            r = rows[-1]
            print(f"  normalize={str(normalize):8s} balance={str(balance):5s}  "
                  f"kNN purity: features {r['purity_features']:.3f}  PCA {r['purity_pca']:.3f}"
                  f"  map {r['purity_map']:.3f} (FRI {r['map_FRI']:.3f}, FRII "
                  f"{r['map_FRII']:.3f})  map {map_s:.1f} s", flush=True)
    out = Table(rows)
    for name in out.colnames:
        if name.startswith(("purity", "map_F", "pca")):
            out[name].format = ".3f"
    out["map_s"].format = ".1f"
    print(f"\nkNN purity (k = {args.k}; chance {chance:.3f}):")
    out.pprint_all()
    if png_written:
        size = Path(args.png).stat().st_size
        print(f"map written to {args.png} ({size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
