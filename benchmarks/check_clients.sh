#!/usr/bin/env bash
# Check by hand that the files astrofmtools writes open in real clients:
# SAOImage DS9 (region files, sky and pixel) and STILTS (FITS, VOTable and
# ECSV tables). Run by hand; never part of the test suite or CI.
#
#   apt-get update && apt-get install -y saods9 xvfb stilts
#   . .venv/bin/activate
#   bash benchmarks/check_clients.sh [IMAGE.fits] [OUTDIR]
#
# IMAGE defaults to the FIRST image that ships with astrofmtools; OUTDIR to
# /tmp/astrofm/clients. The script
#   1. finds sources in the image (astrofmtools.sources.find_sources when it
#      is there, else photutils segmentation) and writes them as tables
#      (FITS, VOTable, ECSV, CSV) and regions: sky ellipses (DS9), pixel boxes
#      (DS9) and sky circles (CRTF);
#   2. loads the image with each DS9 region file in DS9 (headless, under
#      xvfb-run), saves a PNG, and has DS9 save the regions again in its own
#      image and fk5 coordinates, which are compared with the table: DS9's
#      WCS and 1-based pixels must agree with ours;
#   3. reads each table with STILTS (columns, units) and compares the values
#      STILTS sees with ours. ECSV written with portable=False, which holds
#      astropy's serialised SkyCoord, is expected to fail there (STILTS 3.4
#      refuses astropy's YAML tags); the default (portable=True) opens;
#   4. where casatools is installed (pip install casatools), parses our CRTF
#      circles, ellipses and boxes (with labels and colours) with CASA's
#      region manager and compares the pixels CASA puts in each region with
#      ours (benchmarks/check_crtf_casa.py).
# Every DS9 call is wrapped in `timeout 60`: a DS9 error waits for a click.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${2:-/tmp/astrofm/clients}
mkdir -p "$OUT"
IMAGE=${1:-$(python -c "from astrofmtools.datasets import example_image_path as p; print(p())")}
IMAGE=$(readlink -f "$IMAGE")
cd "$OUT"
for tool in ds9 xvfb-run stilts; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y saods9 xvfb stilts"; exit 1; }
done

echo "== 1. tables and regions from $IMAGE"
python - "$IMAGE" <<'EOF'
import sys
import numpy as np
import astropy.units as u
from astropy.table import QTable
from astrofmtools.io import load_image
from astrofmtools.catalog import write_regions, write_table

image = load_image(sys.argv[1])
try:
    from astrofmtools.sources import find_sources
    table = find_sources(image, snr=5.0)
    how = "astrofmtools.sources.find_sources"
except ImportError:
    from photutils.segmentation import SourceCatalog, detect_sources
    data = np.asarray(image.data, float)
    med = np.nanmedian(data)
    rms = 1.4826 * np.nanmedian(np.abs(data - med))
    seg = detect_sources(data - med, 5 * rms, n_pixels=5)
    cat = SourceCatalog(data - med, seg, wcs=image.wcs)
    table = QTable()
    table["id"] = cat.label
    table["x"] = cat.x_centroid * u.pix
    table["y"] = cat.y_centroid * u.pix
    table["sky_centroid"] = cat.sky_centroid.icrs
    table["ra"] = table["sky_centroid"].ra.to(u.deg)
    table["dec"] = table["sky_centroid"].dec.to(u.deg)
    for name in ("bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax"):
        table[name] = getattr(cat, name)
    table["semimajor"] = cat.semimajor_axis
    table["semiminor"] = cat.semiminor_axis
    table["orientation"] = cat.orientation
    table["peak"] = cat.max_value * image.unit
    table["snr"] = cat.max_value / rms
    how = "photutils segmentation (find_sources not there yet)"
print(f"{len(table)} sources from {how}")
# a class and a score to show labels and colours
table["label"] = np.where(np.asarray(table["snr"]) > 20, "bright", "faint")
table["score"] = np.clip(np.asarray(table["snr"]) / 100, 0, 1)
table["x"].info.description = "centroid x, 0-based pixel"

write_regions(table, "sky_ellipse.reg", shape="ellipse", wcs=image, overwrite=True)
write_regions(table, "pixel_box.reg", shape="box", text="id", overwrite=True)
write_regions(table, "sky_circle.crtf", format="crtf", wcs=image, overwrite=True)
for name in ("sources.fits", "sources.vot", "sources.ecsv", "sources.csv"):
    write_table(table, name, overwrite=True)
# ECSV without astropy's SkyCoord serialisation, whose YAML tags STILTS refuses
write_table(table, "sources_portable.ecsv", overwrite=True, portable=True)
# what DS9 should find: our centres, and the bbox centres of the boxes
bx = 0.5 * (table["bbox_xmin"] + table["bbox_xmax"])
by = 0.5 * (table["bbox_ymin"] + table["bbox_ymax"])
bsky = image.wcs.pixel_to_world(bx, by).icrs
QTable({"x": table["x"].value, "y": table["y"].value, "ra": table["ra"].to_value("deg"),
        "dec": table["dec"].to_value("deg"), "bx": bx, "by": by, "bra": bsky.ra.deg,
        "bdec": bsky.dec.deg}).write("expected.ecsv", overwrite=True)
# a zoomed view on the image centre (cutout services centre their target),
# in DS9's 1-based pixels
ny, nx = image.shape
with open("pan.txt", "w") as fh:
    fh.write(f"{(nx + 1) / 2:.1f} {(ny + 1) / 2:.1f}\n")
EOF

echo "== 2. DS9"
printf 'package require img::window\npackage require img::png\n' > png.tcl
ds9_view () {  # ds9_view REGIONS PNG [ZOOM]: whole image, or ZOOM x on its centre
    local view=(-zoom to fit)
    # shellcheck disable=SC2046
    [ -n "${3:-}" ] && view=(-zoom "$3" -pan to $(cat pan.txt) image)
    timeout 60 xvfb-run -a ds9 "$IMAGE" -width 700 -height 700 "${view[@]}" \
        -scale asinh -scale mode 99.5 -cmap grey -regions load "$1" \
        -source png.tcl -saveimage png "$2" -exit
    # DS9 writes interlaced PNGs, which some viewers refuse: rewrite them plain
    python -c "from PIL import Image; Image.open('$2').save('$2')"
}
ds9_resave () {  # ds9_resave REGIONS SYSTEM OUT  (SYSTEM: image or fk5)
    local sky=()
    [ "$2" = fk5 ] && sky=(-regions system wcs -regions sky fk5 -regions skyformat degrees)
    timeout 60 xvfb-run -a ds9 "$IMAGE" -regions load "$1" -regions system "$2" \
        "${sky[@]}" -regions save "$3" -exit
}
ds9_view sky_ellipse.reg ds9_sky_ellipse.png
ds9_view pixel_box.reg ds9_pixel_box.png
ds9_view sky_ellipse.reg ds9_sky_ellipse_zoom.png 4
ds9_view pixel_box.reg ds9_pixel_box_zoom.png 4
ds9_resave sky_ellipse.reg image ds9_sky_ellipse_as_image.reg
ds9_resave pixel_box.reg image ds9_pixel_box_as_image.reg
ds9_resave pixel_box.reg fk5 ds9_pixel_box_as_fk5.reg
python - <<'EOF'
import numpy as np
import regions as rg
from astropy.coordinates import SkyCoord
from astropy.table import QTable

exp = QTable.read("expected.ecsv")
def centres(path):
    regs = rg.Regions.read(path, format="ds9")
    return regs, [r.center for r in regs]

regs, c = centres("ds9_sky_ellipse_as_image.reg")
dx = np.array([p.x for p in c]) - exp["x"]
dy = np.array([p.y for p in c]) - exp["y"]
print(f"DS9 read {len(regs)}/{len(exp)} sky ellipses; in DS9's own image coordinates "
      f"(back to 0-based) they sit at max |dx| = {np.abs(dx).max():.2g}, "
      f"|dy| = {np.abs(dy).max():.2g} pixels from our x, y")
regs, c = centres("ds9_pixel_box_as_image.reg")
dx = np.array([p.x for p in c]) - exp["bx"]
dy = np.array([p.y for p in c]) - exp["by"]
print(f"DS9 read {len(regs)}/{len(exp)} pixel boxes: max |dx| = {np.abs(dx).max():.2g}, "
      f"|dy| = {np.abs(dy).max():.2g} pixels from the bbox centres")
regs, c = centres("ds9_pixel_box_as_fk5.reg")
sep = SkyCoord(c).icrs.separation(SkyCoord(exp["bra"], exp["bdec"], unit="deg"))
print(f"DS9 put our pixel boxes on the sky (its WCS, fk5) within "
      f"{sep.arcsec.max():.2g} arcsec of our WCS (FK5/ICRS differ by ~0.02 arcsec); "
      f"a 1-pixel origin slip would be 1.8 arcsec")
EOF

echo "== 3. STILTS"
# from `stilts tpipe omode=meta`: the counts, the parameter names (our
# table.meta) and the columns with their types and units
SUMMARY='
import re, sys
text = open(sys.argv[1]).read()
print("\n".join(l for l in text.splitlines() if l.startswith(("Columns:", "Rows:"))))
params = re.search(r"^Parameters\n-+\n(.*?)(?:^Columns\n|\Z)", text, re.S | re.M)
names = re.findall(r"^(\S[^:\n]*):$", params.group(1), re.M) if params else []
print("parameters:", " ".join(names))
cols = re.search(r"^Columns\n-+\n(.*)", text, re.S | re.M)
print("columns:", ", ".join(l.split(" - ")[0].split(": ", 1)[1] for l in
      (cols.group(1).splitlines() if cols else []) if re.match(r"^\s+\d+: ", l)))
'
for spec in "sources.fits" "sources.vot" "sources_portable.ecsv ifmt=ecsv" \
            "sources.csv ifmt=csv" "sources.ecsv ifmt=ecsv"; do
    name=${spec%% *}
    echo "-- stilts tpipe in=$spec omode=meta"
    # shellcheck disable=SC2086
    if stilts tpipe in=$spec omode=meta > stilts_meta.txt 2> stilts_error.txt; then
        python -c "$SUMMARY" stilts_meta.txt
        # shellcheck disable=SC2086
        stilts tpipe in=$spec cmd='keepcols "x y ra dec"' ofmt=csv out="stilts_$name.csv"
    else
        echo "STILTS cannot read $name: $(head -1 stilts_error.txt)"
    fi
done
python - <<'EOF'
import os
import numpy as np
from astropy.table import QTable, Table
exp = QTable.read("expected.ecsv")
for name in ("sources.fits", "sources.vot", "sources_portable.ecsv", "sources.csv",
             "sources.ecsv"):
    if not os.path.exists(f"stilts_{name}.csv"):
        continue
    t = Table.read(f"stilts_{name}.csv", format="ascii.csv")
    worst = max(np.abs(np.asarray(t[c], float) - np.asarray(exp[c], float)).max()
                for c in ("x", "y", "ra", "dec"))
    print(f"STILTS read {len(t)}/{len(exp)} rows of {name}: "
          f"max |difference| in x, y, ra, dec = {worst:.2g}")
EOF
echo "== 4. CASA (CRTF)"
# DS9 cannot read CRTF and CARTA has no package: CASA's own region parser
# (casatools, pip install casatools) reads every CRTF file we write
if python -c "import importlib.util as u, sys; sys.exit(u.find_spec('casatools') is None)"; then
    python "$SCRIPTS/check_crtf_casa.py" "$IMAGE" "$OUT/casa" 2>&1 | grep -v -E "\s(INFO|WARN)\s" \
        || echo "CASA check FAILED (see above)"
else
    echo "casatools not installed (pip install casatools): CRTF not checked by CASA"
fi
echo "PNGs: $(ls "$OUT"/ds9_*.png | tr '\n' ' ')"
