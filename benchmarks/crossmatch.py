# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Time and peak memory of `astrofmtools.catalog.crossmatch` for 10^5 and
10^6 sources on each side, in each mode.

Run by hand (never in CI)::

    python benchmarks/crossmatch.py                       # 1e5 and 1e6, every mode
    python benchmarks/crossmatch.py --sizes 100000 --density 50 --max-sep 15

The catalogues fill a patch of sky at a realistic density (default 10^4
sources per square degree, a deep optical catalogue; ``--density 50`` is
NVSS-like), so 10^6 sources cover 100 square degrees. The table has
``id``, ``label``, ``flux`` and a ``sky_centroid`` SkyCoord column, as a
predictions table does; the reference has ``name``, ``flux`` (which clashes)
and ``RAJ2000``/``DEJ2000`` in degrees, as a VizieR table does. 70% of the
reference sources are table sources moved by 1 arcsec (rms per axis), the
rest are unrelated. Each run is a fresh subprocess, so the peak resident
memory (``ru_maxrss``) is that run's alone; "extra" is the peak during the
call above the peak reached while making the catalogues. The time covers
everything `crossmatch` does (finding the sky columns, the search, the
one-to-one selection, the output table), not file I/O. The "astropy" rows
are the bare astropy calls on ready-made SkyCoords, for comparison:
``search_around_sky``, the search every mode starts from, and
``match_coordinates_sky`` (``SkyCoord.match_to_catalog_sky``), the usual
nearest-neighbour match, which finds no counts of candidates.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

ARCSEC = 1 / 3600


def make_catalogues(n, density, seed=0):
    """A predictions-like table and a VizieR-like reference of n sources each."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    rng = np.random.default_rng(seed)
    side = np.sqrt(n / density)  # degrees
    ra0, dec0 = 150.0, 2.0
    sin_lo, sin_hi = np.sin(np.radians([dec0 - side / 2, dec0 + side / 2]))
    half_ra = side / 2 / np.cos(np.radians(dec0))

    def uniform(k):
        return (rng.uniform(ra0 - half_ra, ra0 + half_ra, k),
                np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, k))))

    ra, dec = uniform(n)
    table = QTable({"id": np.arange(n), "label": rng.choice(["FRI", "FRII", "compact"], n),
                    "flux": rng.lognormal(0, 1, n) * u.mJy,
                    "sky_centroid": SkyCoord(ra, dec, unit="deg")})
    n_common = int(0.7 * n)
    ra_ref = ra[:n_common] + rng.normal(0, ARCSEC, n_common) / np.cos(np.radians(dec[:n_common]))
    dec_ref = dec[:n_common] + rng.normal(0, ARCSEC, n_common)
    ra_extra, dec_extra = uniform(n - n_common)
    order = rng.permutation(n)
    reference = QTable({"name": np.char.add("R", np.arange(n).astype(str)),
                        "flux": rng.lognormal(0, 1, n) * u.mJy,
                        "RAJ2000": np.concatenate([ra_ref, ra_extra])[order] * u.deg,
                        "DEJ2000": np.concatenate([dec_ref, dec_extra])[order] * u.deg})
    return table, reference


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(n, mode, density, max_sep, repeat):
    import astropy.units as u
    from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky
    from astrofmtools.catalog import crossmatch

    table, reference = make_catalogues(n, density)
    if mode.startswith("astropy"):
        c1 = table["sky_centroid"]
        c2 = SkyCoord(reference["RAJ2000"], reference["DEJ2000"])
    before = maxrss_mb()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        if mode == "astropy-nearest":
            _, sep, _ = match_coordinates_sky(c1, c2, storekdtree=False)
            rows = pairs = int((sep <= max_sep * u.arcsec).sum())
        elif mode == "astropy-search":
            i, _, _, _ = search_around_sky(c1, c2, max_sep * u.arcsec, storekdtree=False)
            rows, pairs = len(np.unique(i)), len(i)
        else:
            matched = crossmatch(table, reference, max_sep=max_sep * u.arcsec, mode=mode)
            rows = matched.meta["crossmatch"]["n_matched_rows"]
            pairs = matched.meta["crossmatch"]["n_pairs"]
            del matched
        times.append(time.perf_counter() - t0)
    seconds = min(times)
    peak = maxrss_mb()
    print(json.dumps({"n": n, "mode": mode, "seconds": seconds, "rows": rows, "pairs": pairs,
                      "peak_mb": peak, "extra_mb": max(peak - before, 0.0),
                      "inputs_mb": before}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="sources on each side (default: 100000 1000000)")
    parser.add_argument("--modes", nargs="+",
                        default=["nearest", "best", "all", "astropy-nearest", "astropy-search"],
                        help="crossmatch modes, and the bare astropy calls")
    parser.add_argument("--density", type=float, default=1e4,
                        help="sources per square degree (default: 1e4)")
    parser.add_argument("--max-sep", type=float, default=5.0, help="arcsec (default: 5)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time the best of N calls in each process (default: 1)")
    parser.add_argument("--worker", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(int(args.worker[0]), args.worker[1], args.density, args.max_sep, args.repeat)
        return

    print(f"density {args.density:g} per deg^2, max_sep {args.max_sep:g} arcsec; "
          "70% of the reference are table sources moved by 1\" rms per axis; "
          f"best of {args.repeat} call(s) per process")
    print(f"{'N each side':>12s} {'mode':16s} {'time':>8s} {'matched rows':>13s} "
          f"{'pairs':>9s} {'peak RSS':>10s} {'extra':>9s}")
    for n in args.sizes:
        for mode in args.modes:
            out = subprocess.run([sys.executable, __file__, "--worker", str(n), mode,
                                  "--density", str(args.density), "--max-sep",
                                  str(args.max_sep), "--repeat", str(args.repeat)],
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"{n:12d} {mode:16s} failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['n']:12d} {r['mode']:16s} {r['seconds']:7.2f}s {r['rows']:13d} "
                  f"{r['pairs']:9d} {r['peak_mb']:8.0f}MB {r['extra_mb']:7.0f}MB", flush=True)


if __name__ == "__main__":
    main()
