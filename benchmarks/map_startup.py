# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Start-up cost of a feature map in a new process: umap-learn's numba
compilation, paid once and then read from numba's disk cache, which
`astrofmtools.embed` turns on.

Run by hand (never in CI)::

    python benchmarks/map_startup.py [--runs 3]

Each run is a fresh Python process that fits a PCA + UMAP map
(`~astrofmtools.embed.FeatureMap`) on 130 random 64-d vectors and places 9
more. The first run after installing (or after ``--clear``, which deletes
the cache files beside umap-learn and pynndescent) compiles; later ones load.
"""

import argparse
import subprocess
import sys
from pathlib import Path

CHILD = """
import time
t0 = time.perf_counter()
import numpy as np
from astrofmtools.embed import FeatureMap
t1 = time.perf_counter()
rng = np.random.default_rng(0)
fitted = FeatureMap(n_components=10, seed=0).fit(rng.normal(size=(130, 64)))
t2 = time.perf_counter()
fitted.transform(rng.normal(size=(9, 64)))
t3 = time.perf_counter()
print(f"{t1 - t0:.1f} {t2 - t1:.1f} {t3 - t2:.1f}")
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clear", action="store_true",
                        help="delete numba's cache files of umap-learn and pynndescent first")
    args = parser.parse_args()
    if args.clear:
        import pynndescent
        import umap
        for package in (umap, pynndescent):
            for f in Path(package.__file__).parent.glob("__pycache__/*.nb[ic]"):
                f.unlink()
    print(f"{'run':>4} {'import s':>9} {'fit s':>7} {'place s':>8}")
    for run in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                             check=True).stdout.split()
        print(f"{run + 1:>4} {out[0]:>9} {out[1]:>7} {out[2]:>8}")


if __name__ == "__main__":
    main()
