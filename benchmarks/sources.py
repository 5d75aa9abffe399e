# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Completeness, reliability and speed of `astrofmtools.sources.find_sources`
on a synthetic radio mosaic with truth, beside SEP when it is installed.

Run by hand (never in CI)::

    python benchmarks/sources.py                 # 4096 x 4096, ~3000 sources
    python benchmarks/sources.py --size 2048 --seed 3 --snr 5

Truth: `astrofmtools.datasets.make_radio_field` (white noise convolved with
the beam, compact sources shaped like the beam, FRI/FRII radio galaxies and
sidelobe artefacts). A compact source counts as found when a detection is
matched to it within ``--radius`` beam FWHM (default 0.5 FWHM), one to one,
by `astrofmtools.evaluate.completeness_reliability` (the sources are at
least 2 FWHM apart, so this is the same as "a detection lies within the
radius"). A detection counts as real when it lies within 1 FWHM of any truth
source or inside the bounding box (1-sigma footprint) of one, grown by
1 FWHM: more lenient than the one-to-one reliability of
`~astrofmtools.evaluate.completeness_reliability`, because a finder may
rightly split a radio galaxy into several components. "True SNR" is the
truth peak over the noise rms per pixel.

SEP is run the way its documentation shows (``sep.extract(data - bkg,
thresh, err=bkg.globalrms)`` with its default 3x3 filter), at its "5 sigma"
and, for comparison, at the threshold that gives it the same reliability.
Times are the best of ``--repeat`` runs of each, in the same process.

Memory: the peak of what one more `find_sources` call allocates
(tracemalloc, which numpy reports its arrays to; the image itself is not
counted), per pixel of the image, and the peak resident memory of the
whole process (``ru_maxrss``: making the field and SEP included).
"""

import argparse
import resource
import time
import tracemalloc

import numpy as np
from scipy.spatial import cKDTree

SNR_BINS = (3, 4, 5, 7, 10, 20, 50, 100, 1e9)


def real_detections(truth, x, y, fwhm_pix):
    """Detections within 1 FWHM of a truth source or inside its bbox grown by 1 FWHM."""
    real = np.zeros(len(x), bool)
    if len(x):
        ttree = cKDTree(np.column_stack([np.asarray(truth["x"], float),
                                         np.asarray(truth["y"], float)]))
        dist, _ = ttree.query(np.column_stack([x, y]))
        real = dist <= fwhm_pix
        grow = fwhm_pix
        for row in truth[truth["kind"] != "compact"]:
            real |= ((x >= row["bbox_xmin"] - grow) & (x <= row["bbox_xmax"] + grow)
                     & (y >= row["bbox_ymin"] - grow) & (y <= row["bbox_ymax"] + grow))
    return real


def summarise(name, truth, x, y, seconds, fwhm_pix, radius):
    from astropy.table import QTable
    from astrofmtools.evaluate import completeness_reliability, match_positions

    compact = truth[truth["kind"] == "compact"]
    found = QTable({"x": np.asarray(x, float), "y": np.asarray(y, float)})
    max_sep = radius * fwhm_pix
    per_bin = completeness_reliability(found, compact, snr_bins=SNR_BINS, max_sep=max_sep)
    real = real_detections(truth, np.asarray(x, float), np.asarray(y, float), fwhm_pix)
    row = {"name": name, "time": seconds, "n": len(x),
           "reliability": real.mean() if len(x) else np.nan,
           "spurious": int((~real).sum())}
    for b in per_bin:
        row[(b["snr_min"], b["snr_max"])] = (b["completeness"], int(b["n_true"]))
    for lo in (5, 10):
        row[f">={lo}"] = completeness_reliability(found, compact, snr_bins=[lo, np.inf],
                                                  max_sep=max_sep)["completeness"][0]
    _, ti, sep = match_positions(found, compact, max_sep)
    bright = np.asarray(compact["snr"], float)[ti] >= 10
    row["offset_10"] = np.median(sep[bright]) if bright.any() else np.nan
    row["within1pix_10"] = completeness_reliability(found, compact, snr_bins=[10, np.inf],
                                                    max_sep=1.0)["completeness"][0]
    return row


def print_table(rows, truth):
    bins = list(zip(SNR_BINS[:-1], SNR_BINS[1:]))
    compact = truth["kind"] == "compact"
    head = f"{'finder':34s}" + "".join(
        f"{f'{lo:g}-{hi:g}' if hi < 1e8 else f'>={lo:g}':>8s}" for lo, hi in bins)
    head += f"{'>=5':>7s}{'>=10':>7s}{'<=1px':>7s}{'reliab.':>9s}{'false':>6s}{'N':>6s}{'time':>8s}"
    print(head)
    counts = f"{'(compact truth sources per bin)':34s}" + "".join(
        f"{int(np.sum(compact & (truth['snr'] >= lo) & (truth['snr'] < hi))):8d}"
        for lo, hi in bins)
    print(counts)
    for r in rows:
        line = f"{r['name']:34s}" + "".join(f"{r[b][0]:8.3f}" for b in bins)
        line += (f"{r['>=5']:7.3f}{r['>=10']:7.3f}{r['within1pix_10']:7.3f}"
                 f"{r['reliability']:9.4f}{r['spurious']:6d}{r['n']:6d}{r['time']:7.2f}s")
        print(line)


def peak_memory(func, *args, **kwargs):
    """The peak of the memory allocated during ``func(*args, **kwargs)`` (bytes; tracemalloc)."""
    tracemalloc.start()
    try:
        func(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_sep(image, thresh):
    import sep
    data = np.ascontiguousarray(image.data, dtype=np.float32)
    t0 = time.perf_counter()
    bkg = sep.Background(data, bw=64, bh=64)
    sub = data - bkg.back()
    sep.set_extract_pixstack(10_000_000)
    sep.set_sub_object_limit(10_000)
    objects = sep.extract(sub, thresh, err=bkg.globalrms)
    seconds = time.perf_counter() - t0
    return objects["x"], objects["y"], seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the field")
    parser.add_argument("--density", type=float, default=2700 / 4096 ** 2 * 1e6,
                        help="compact sources per million pixels (default ~161)")
    parser.add_argument("--snr-range", type=float, nargs=2, default=(3.0, 300.0),
                        metavar=("LO", "HI"), help="true peak SNRs of the point sources "
                        "(log-uniform; default 3 300)")
    parser.add_argument("--snr", type=float, default=5.0, help="find_sources threshold")
    parser.add_argument("--radius", type=float, default=0.5,
                        help="match radius in beam FWHM (default 0.5)")
    parser.add_argument("--matched-filter", default="auto", choices=("auto", "psf", "none"),
                        help="find_sources matched_filter (default auto)")
    parser.add_argument("--tile-size", type=int, default=None,
                        help="find_sources tile_size (default: its own choice; 0: never tile)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time the best of N runs of each finder")
    parser.add_argument("--no-sep", action="store_true", help="skip SEP")
    args = parser.parse_args(argv)

    from astrofmtools.datasets import make_radio_field
    from astrofmtools.sources import find_sources

    n_compact = int(round(args.density * args.size ** 2 / 1e6))
    n_extended = max(1, n_compact // 9)
    t0 = time.perf_counter()
    image, truth = make_radio_field(shape=(args.size, args.size), n_compact=n_compact,
                                    n_extended=n_extended, n_artefacts=4,
                                    snr_range=tuple(args.snr_range), seed=args.seed)
    print(f"synthetic {args.size}x{args.size} radio field (seed {args.seed}): "
          f"{len(truth)} truth sources ({n_compact} compact), made in "
          f"{time.perf_counter() - t0:.1f} s; beam {image.beam.major.to_value('arcsec'):g}\" = "
          f"{image.beam_pixels[0]:.2f} pix FWHM")
    fwhm = image.beam_pixels[0]
    find_sources((image.data[:256, :256].copy(), None))  # warm up: imports, caches
    rows = []
    best, table = np.inf, None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        table = find_sources(image, snr=args.snr, matched_filter=args.matched_filter,
                             tile_size=args.tile_size)
        best = min(best, time.perf_counter() - t0)
    peak = peak_memory(find_sources, image, snr=args.snr, matched_filter=args.matched_filter,
                       tile_size=args.tile_size)
    rows.append(summarise(f"find_sources snr={args.snr:g} {args.matched_filter}", truth,
                          np.asarray(table["x"]), np.asarray(table["y"]), best, fwhm,
                          args.radius))
    print(f"find_sources: filter = {table.meta['matched_filter']}; psf from "
          f"{table.meta['psf_source']}; noise correlation FWHM "
          f"{table.meta['noise_correlation_fwhm_pix'][0]:.2f} pix; tile_size "
          f"{table.meta['tile_size']}; peak memory {peak / 2 ** 20:.0f} MiB = "
          f"{peak / args.size ** 2:.1f} bytes per pixel (tracemalloc, one more call)")
    if not args.no_sep:
        try:
            import sep  # noqa: F401
        except ImportError:
            print("SEP is not installed: skipped.")
        else:
            run_sep(image, 5.0)  # warm up
            for thresh in (5.0, 3.5):
                runs = [run_sep(image, thresh) for _ in range(args.repeat)]
                x, y, _ = runs[0]
                rows.append(summarise(f"SEP thresh={thresh:g} (err=globalrms)", truth, x, y,
                                      min(r[2] for r in runs), fwhm, args.radius))
    print()
    print("Completeness of compact sources per true-SNR bin (matched within "
          f"{args.radius:g} beam FWHM), reliability, wall time:")
    print_table(rows, truth)
    if len(rows) > 1:
        print(f"time of find_sources / SEP thresh=5: {rows[0]['time'] / rows[1]['time']:.2f}")
    print(f"peak resident memory of the process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10:.0f} MiB")


if __name__ == "__main__":
    main()
