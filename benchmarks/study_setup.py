"""
Write the cutout stacks and configs of the two studies of docs/study.rst.

    python benchmarks/study_setup.py --out studies/
    astrofm study studies/frdeep/study.yaml -o studies/frdeep/study
    astrofm study studies/gz1/study.yaml -o studies/gz1/study

``frdeep/cutouts.fits``: the 600 FR-DEEP FIRST images (150 x 150, 1.8"/px) with
``label`` (FRI, FRII) and FR-DEEP's own ``split`` (550 train, 50 test).

``gz1/cutouts.fits``: Galaxy Zoo 1 SDSS gri images with four classes
(elliptical, spiral, edge_on, merger: the two spin directions merged, since
flips erase handedness, and dont_know left out). All spirals, edge-on
galaxies and mergers, and ``--ellipticals`` ellipticals drawn with seed 0
(the 2,127 would make the frozen cells the whole cost); each 423 x 423 JPEG
is block-averaged 3 x 3 to 141 x 141 (the studies run at 64 pixels).

The configs are ``benchmarks/studies/*.yaml`` with ``DINOV2`` replaced by the
``--dinov2`` weights file.
"""

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _frdeep import DEFAULT_DATA, DEFAULT_DINO, load_frdeep  # noqa: E402

_SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
_CONFIGS = Path(__file__).resolve().parent / "studies"


def frdeep_stack(path):
    from astropy.table import Table
    from astrofmtools.cutouts import CutoutStack
    images, labels, split = load_frdeep(path)
    return CutoutStack(images, Table({"label": labels, "split": split}))


def gz1_stack(folder, ellipticals, seed=0):
    from astropy.table import Table
    from PIL import Image
    from astrofmtools.cutouts import CutoutStack
    rows = [r for r in csv.DictReader(open(folder / "labels.csv"))
            if r["class_name"] != "dont_know"]
    names = np.array([r["class_name"].replace("spiral_anticlockwise", "spiral")
                      .replace("spiral_clockwise", "spiral") for r in rows])
    rng = np.random.default_rng(seed)
    elliptical = np.flatnonzero(names == "elliptical")
    keep = np.sort(np.concatenate([np.flatnonzero(names != "elliptical"),
                                   rng.choice(elliptical, ellipticals, replace=False)]))
    images = np.stack([np.moveaxis(np.asarray(
        Image.open(folder / "images" / f"{rows[i]['objid']}.jpeg").convert("RGB")
        .reduce(3), dtype=np.float32), -1, 0) for i in keep])
    table = Table({"objid": [int(rows[i]["objid"]) for i in keep], "label": names[keep]})
    return CutoutStack(images, table)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--out", default="studies", help="folder (default: %(default)s)")
    parser.add_argument("--frdeep", default=str(DEFAULT_DATA))
    parser.add_argument("--gz1", default=str(_SHARED / "gz1"))
    parser.add_argument("--dinov2", default=str(DEFAULT_DINO),
                        help="dinov2_vits14 weights (default: %(default)s)")
    parser.add_argument("--ellipticals", type=int, default=500)
    args = parser.parse_args()
    for name, make in (("frdeep", lambda: frdeep_stack(args.frdeep)),
                       ("gz1", lambda: gz1_stack(Path(args.gz1), args.ellipticals))):
        folder = Path(args.out) / name
        folder.mkdir(parents=True, exist_ok=True)
        stack = make()
        stack.write(folder / "cutouts.fits", overwrite=True)
        text = (_CONFIGS / f"{name}.yaml").read_text()
        (folder / "study.yaml").write_text(text.replace("DINOV2", str(Path(args.dinov2).resolve())))
        counts = dict(zip(*np.unique(np.asarray(stack.table["label"]), return_counts=True)))
        print(f"{folder}: {len(stack)} cutouts of {stack.data.shape[1:]}, {counts}")


if __name__ == "__main__":
    main()
