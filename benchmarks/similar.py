# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How fast is exact cosine similarity search? Run by hand (never in CI)::

    python benchmarks/similar.py [--sizes 100000 1000000] [--dim 384] [--k 8]

For each number of vectors (random float32, dimension ``--dim``, as DINOv2
ViT-S features) it times `astrofmtools.embed.SimilarityIndex`:

- **build**: computing the norms (numpy) or filling a ``faiss.IndexFlatIP``
  with the normalised vectors (faiss; only when faiss is installed);
- **1 query** and **100 queries** (one call): the median of ``--repeat``
  searches for the ``--k`` nearest neighbours;
- **memory**: what the index holds besides the vectors, and the peak of
  temporary memory during a 100-query search (numpy, via tracemalloc; faiss
  allocates outside Python: its index size is given instead).

Both backends are checked to return the same neighbours. The floor for one
query is reading every vector once (N x D x 4 bytes from memory).
"""

import argparse
import os
import platform
import time
import tracemalloc

import numpy as np

from astrofmtools.embed import SimilarityIndex, has_faiss


def median_time(func, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run(n, dim, k, repeat, backends, rng):
    features = rng.standard_normal((n, dim), dtype=np.float32)
    q1 = rng.standard_normal((1, dim), dtype=np.float32)
    q100 = rng.standard_normal((100, dim), dtype=np.float32)
    rows = []
    results = {}
    for backend in backends:
        tracemalloc.start()
        t0 = time.perf_counter()
        index = SimilarityIndex(features, backend=backend)
        index.search(q1, k)  # faiss: the index is filled at the first search
        build = time.perf_counter() - t0
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        if backend == "faiss":
            held = index._faiss.ntotal * dim * 4 + index.inverse_norms.nbytes
        t1 = median_time(lambda: index.search(q1, k), repeat)
        t100 = median_time(lambda: index.search(q100, k), repeat)
        tracemalloc.start()
        results[backend] = index.search(q100, k)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append((n, backend, build, t1, t100, held, peak if backend == "numpy" else None))
    if len(results) == 2:
        same = np.array_equal(results["numpy"][1], results["faiss"][1])
        diff = np.abs(results["numpy"][0] - results["faiss"][0]).max()
        print(f"# N={n}: faiss and numpy give the same neighbours: {same} "
              f"(largest similarity difference {diff:.1e})")
    return rows, features.nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    backends = ["numpy"] + (["faiss"] if has_faiss() else [])
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy "
          f"{np.__version__}; backends: {', '.join(backends)}; dim {args.dim}, k {args.k}")
    rng = np.random.default_rng(0)
    table = []
    for n in args.sizes:
        rows, nbytes = run(n, args.dim, args.k, args.repeat, backends, rng)
        print(f"# N={n}: the vectors take {nbytes / 2**20:.0f} MiB")
        table += rows
    print(f"{'N':>9} {'backend':>7} {'build s':>8} {'1 query ms':>11} {'100 queries ms':>15} "
          f"{'per query ms':>13} {'index MiB':>10} {'search peak MiB':>16}")
    for n, backend, build, t1, t100, held, peak in table:
        peak_text = f"{peak / 2**20:16.1f}" if peak is not None else f"{'-':>16}"
        print(f"{n:>9} {backend:>7} {build:8.2f} {1e3 * t1:11.1f} {1e3 * t100:15.1f} "
              f"{1e3 * t100 / 100:13.2f} {held / 2**20:10.1f} {peak_text}")


if __name__ == "__main__":
    main()
