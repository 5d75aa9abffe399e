"""
The seed study's qualitative findings, checked on finished studies, and the estimate's
accuracy.

    python benchmarks/study_findings.py studies/frdeep studies/gz1 [--no-timing]

For each study folder (written by benchmarks/study_setup.py, then run with
``astrofm study``) it prints, paired by seed (`factor_effects`):

- within each backbone, the effect of the close crop (``crop`` against ``full``) and of
  each adaptation against a frozen linear head;
- within each adaptation, each backbone against the first (the study's "which features");

each over every label fraction and with all the labels; then the winner with all the
labels, and the calibrated estimate (`estimate_cost`, timed on this machine) against
the measured seconds, by strategy.
"""

import argparse
from pathlib import Path

import numpy as np
from astropy.table import QTable


def _line(what, e):
    return (f"  {what:<64} {e['mean']:+.3f}  [{e['low']:+.3f}, {e['high']:+.3f}]  "
            f"wins {e['wins']}/{e['n']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("folders", nargs="+", help="folders holding study.yaml and study/")
    parser.add_argument("--no-timing", action="store_true",
                        help="skip the calibrated estimate (it loads every backbone)")
    args = parser.parse_args()
    from astrofmtools.study import StudyConfig, best_settings, estimate_cost, factor_effects
    for folder in map(Path, args.folders):
        results = QTable.read(folder / "study" / "results.ecsv")
        config = StudyConfig(folder / "study.yaml")
        top = max(results["label_fraction"])
        print(f"\n== {folder.name}: {len(results)} cells, {results['n_test'][0]} test cutouts; "
              "macro-F1 differences, paired by seed: mean [95 % interval] wins")
        for fraction, label in ((None, "all fractions"), (top, "all labels")):
            print(f" {label}:")
            for e in factor_effects(results, fraction=fraction, by="backbone"):
                print(_line(f"{e['level']} - {e['baseline']}, {e['backbone']}", e))
            for e in factor_effects(results, fraction=fraction, by="method"):
                if e["factor"] == "backbone":
                    print(_line(f"{e['level']} - {e['baseline']}, {e['method']}", e))
        best = best_settings(results, fraction=top)[0]
        print(f" winner with all labels: {best['backbone']} / {best['preprocess_name']} / "
              f"{best['method']}: {best['macro_f1_mean']:.3f} ± {best['macro_f1_std']:.3f}")
        if args.no_timing:
            continue
        n_train = int(max(results["n_labels"]))  # at label fraction 1: every training row
        estimate = estimate_cost(config, n_train=n_train, n_test=int(results["n_test"][0]),
                                 calibrate=True)
        print(" estimate (timed) against measured seconds:")
        for kind in ("frozen", "trains the backbone"):
            rows = [r for r in results if (r["strategy"] == "frozen") == (kind == "frozen")]
            est = sum(estimate.get(r["name"], np.nan) for r in rows)
            real = sum(float(r["seconds"]) for r in rows)
            print(f"  {kind:<20} {len(rows):>4} cells  estimated {est:8.0f} s  measured "
                  f"{real:8.0f} s  ratio {est / real:.2f}")


if __name__ == "__main__":
    main()
