# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
HATS catalogues through lsdb against the in-memory cross-match: write,
read and cross-match times and peak memory for 10^5 and 10^6 sources.

Run by hand (never in CI)::

    python benchmarks/hats_crossmatch.py                    # 1e5 and 1e6 sources
    python benchmarks/hats_crossmatch.py --sizes 100000 --area 30

The table has ``id``, ``label``, ``flux`` and a ``sky_centroid`` SkyCoord,
uniform over ``--area`` square degrees (default 300); the reference is the
table moved by ``--jitter`` arcsec (rms per axis, default 1) plus
``--unrelated`` times as many unrelated sources (default 0.3), shuffled,
with VizieR-like ``name``, ``flux``, ``RAJ2000``, ``DEJ2000``. Each step
runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is
its own; "before" is the resident memory when the step starts (imports, and
for the in-memory steps the catalogues). The steps:

``memory``
    `astrofmtools.catalog.crossmatch` of the two in-memory tables.
``hats write``
    `astrofmtools.catalog.write_hats` of both tables (lsdb's in-memory
    partitioning and margin caches, then the Parquet files), in partitions
    of at most ``--partition-rows`` rows (default 100,000; lsdb's own
    default, 1 GiB, would make one partition of these catalogues and
    nothing would stream).
``hats read``
    `astrofmtools.catalog.read_hats` of the reference into a QTable.
``lsdb -> table``
    `astrofmtools.catalog.crossmatch_hats` of the two HATS folders into a
    QTable.
``lsdb -> .hats``
    The same, written as a HATS folder (the result is never whole in
    memory).

The lsdb steps first write, cross-match and read a catalogue of 2000
sources, untimed: numba compiles hats' code on its first use in a process
(3 to 5 s), which would otherwise be counted in whichever step comes
first. Mode ``best`` (one-to-one), ``--max-sep`` 5 arcsec. The match sets of
``memory``, ``lsdb -> table`` and ``lsdb -> .hats`` are compared at the end
(the same pairs of ``id`` and ``ref_index``, separations within 1e-6
arcsec). Dask runs lsdb's partitions on its default threaded scheduler
(``--scheduler synchronous`` for one thread).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ARCSEC = 1 / 3600
STEPS = ("memory", "hats-write", "hats-read", "lsdb-table", "lsdb-hats")
LABELS = {"memory": "memory", "hats-write": "hats write", "hats-read": "hats read",
          "lsdb-table": "lsdb -> table", "lsdb-hats": "lsdb -> .hats"}


def make_catalogues(n, area, jitter, unrelated, seed=0):
    """The table (n sources) and the reference (jittered copy + unrelated sources)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    rng = np.random.default_rng(seed)
    side = np.sqrt(area)  # degrees
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
    ra_ref = ra + rng.normal(0, jitter * ARCSEC, n) / np.cos(np.radians(dec))
    dec_ref = dec + rng.normal(0, jitter * ARCSEC, n)
    ra_extra, dec_extra = uniform(int(unrelated * n))
    m = n + len(ra_extra)
    order = rng.permutation(m)
    reference = QTable({"name": np.char.add("R", np.arange(m).astype(str)),
                        "flux": rng.lognormal(0, 1, m) * u.mJy,
                        "RAJ2000": np.concatenate([ra_ref, ra_extra])[order] * u.deg,
                        "DEJ2000": np.concatenate([dec_ref, dec_extra])[order] * u.deg})
    return table, reference


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def save_pairs(path, ids, refs, seps):
    order = np.argsort(ids, kind="stable")
    np.savez(path, id=np.asarray(ids)[order], ref=np.asarray(refs)[order],
             sep=np.asarray(seps, dtype=float)[order])


def worker(step, n, args):
    import warnings

    import dask
    import astropy.units as u
    from astrofmtools.catalog import (crossmatch, crossmatch_hats, read_hats, write_hats)
    from astrofmtools.catalog.hats import _lsdb

    warnings.simplefilter("ignore")
    _lsdb()  # import lsdb (and the rest) before "before"
    dask.config.set(scheduler=args.scheduler)
    folder = args.workdir
    table_path = os.path.join(folder, f"table_{n}.hats")
    ref_path = os.path.join(folder, f"reference_{n}.hats")
    max_sep = args.max_sep * u.arcsec
    if step != "memory":  # numba compiles hats' code on first use (3-5 s): not timed
        warm = tempfile.mkdtemp(dir=folder)
        small, small_ref = make_catalogues(2000, 1.0, args.jitter, args.unrelated, seed=1)
        write_hats(small_ref, os.path.join(warm, "r.hats"))
        crossmatch_hats(small, os.path.join(warm, "r.hats"), max_sep=max_sep,
                        output=os.path.join(warm, "m.hats"))
        read_hats(os.path.join(warm, "m.hats"))
        shutil.rmtree(warm)
    if step in ("memory", "hats-write"):
        table, reference = make_catalogues(n, args.area, args.jitter, args.unrelated)
    before = current_rss_mb()
    rows, note = None, ""
    t0 = time.perf_counter()
    if step == "memory":
        matched = crossmatch(table, reference, max_sep=max_sep)
        seconds = time.perf_counter() - t0
        rows = len(matched)
        save_pairs(os.path.join(folder, f"pairs_memory_{n}.npz"), matched["id"],
                   matched["ref_index"], matched["separation"].to_value(u.arcsec))
    elif step == "hats-write":
        write_hats(table, table_path, overwrite=True, partition_rows=args.partition_rows)
        write_hats(reference, ref_path, overwrite=True, partition_rows=args.partition_rows)
        seconds = time.perf_counter() - t0
        rows = len(table) + len(reference)
        note = "partitions: " + " + ".join(str(_partitions(path)) for path in (table_path,
                                                                               ref_path))
    elif step == "hats-read":
        rows = len(read_hats(ref_path))
        seconds = time.perf_counter() - t0
    elif step == "lsdb-table":
        matched = crossmatch_hats(table_path, ref_path, max_sep=max_sep)
        seconds = time.perf_counter() - t0
        rows = len(matched)
        save_pairs(os.path.join(folder, f"pairs_lsdb-table_{n}.npz"), matched["id"],
                   matched["ref_index"], matched["separation"].to_value(u.arcsec))
    else:  # lsdb-hats
        out = os.path.join(folder, f"matched_{n}.hats")
        meta = crossmatch_hats(table_path, ref_path, max_sep=max_sep, output=out,
                               overwrite=True)
        seconds = time.perf_counter() - t0
        rows = meta["crossmatch"]["n_pairs"]
        peak = maxrss_mb()  # before reading the result back for the comparison
        back = read_hats(out, columns=["id", "ref_index", "separation"])
        save_pairs(os.path.join(folder, f"pairs_lsdb-hats_{n}.npz"), back["id"],
                   back["ref_index"], back["separation"].to_value(u.arcsec))
        print(json.dumps({"seconds": seconds, "rows": rows, "peak_mb": peak,
                          "before_mb": before, "note": note}))
        return
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mb": maxrss_mb(),
                      "before_mb": before, "note": note}))


def _partitions(path):
    from astrofmtools.catalog.hats import _lsdb, _quiet

    lsdb = _lsdb()
    with _quiet():
        return lsdb.read_hats(path).npartitions


def compare(folder, n):
    """Whether the in-memory and the lsdb match sets agree (pairs, separations)."""
    ref = np.load(os.path.join(folder, f"pairs_memory_{n}.npz"))
    out = []
    for step in ("lsdb-table", "lsdb-hats"):
        path = os.path.join(folder, f"pairs_{step}_{n}.npz")
        if not os.path.exists(path):
            out.append(f"{LABELS[step]}: missing")
            continue
        got = np.load(path)
        same = (np.array_equal(got["id"], ref["id"]) and np.array_equal(got["ref"], ref["ref"]))
        dsep = np.max(np.abs(got["sep"] - ref["sep"]), initial=0) if same else np.nan
        ok = same and dsep <= 1e-6
        out.append(f"{LABELS[step]}: {'same' if ok else 'DIFFERENT'} {len(got['id'])} pairs "
                   f"(max |d sep| {dsep:.1e} arcsec)")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="sources in the table (default: 100000 1000000)")
    parser.add_argument("--area", type=float, default=300.0,
                        help="square degrees the sources cover (default: 300)")
    parser.add_argument("--jitter", type=float, default=1.0,
                        help="arcsec rms per axis of the reference's copies (default: 1)")
    parser.add_argument("--unrelated", type=float, default=0.3,
                        help="unrelated reference sources, per table source (default: 0.3)")
    parser.add_argument("--max-sep", type=float, default=5.0, help="arcsec (default: 5)")
    parser.add_argument("--partition-rows", type=int, default=100_000,
                        help="rows per HATS partition at most (default: 100000)")
    parser.add_argument("--scheduler", default="threads",
                        help="dask scheduler: threads or synchronous (default: threads)")
    parser.add_argument("--workdir", default=None,
                        help="folder for the HATS catalogues (default: a temporary one, removed)")
    parser.add_argument("--worker", nargs=2, metavar=("STEP", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args)
        return

    workdir = args.workdir or tempfile.mkdtemp(prefix="hats_bench_")
    try:
        print(f"{args.area:g} deg^2; reference = table moved by {args.jitter:g}\" rms per axis "
              f"+ {args.unrelated:g} x N unrelated; mode best, max_sep {args.max_sep:g} "
              f"arcsec; HATS partitions of at most {args.partition_rows} rows; dask scheduler "
              f"{args.scheduler}; {os.cpu_count()} CPUs")
        print(f"{'N table':>10s} {'step':15s} {'time':>8s} {'rows':>10s} {'peak RSS':>10s} "
              f"{'before':>9s}  note")
        for n in args.sizes:
            for step in STEPS:
                cmd = [sys.executable, __file__, "--worker", step, str(n), "--workdir", workdir]
                for option in ("area", "jitter", "unrelated", "max_sep", "partition_rows",
                               "scheduler"):
                    cmd += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    tail = (out.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"{n:10d} {LABELS[step]:15s} failed: {tail}", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{n:10d} {LABELS[step]:15s} {r['seconds']:7.1f}s {r['rows']:10d} "
                      f"{r['peak_mb']:8.0f}MB {r['before_mb']:7.0f}MB  {r['note']}",
                      flush=True)
            for line in compare(workdir, n):
                print(f"{'':10s} check: {line}")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
