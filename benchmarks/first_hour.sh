#!/usr/bin/env bash
# The first hour, again: README's commands then each subcommand on real data, with wall times.
# Run by hand from a fresh clone and venv (pip install ".[all]"): bash benchmarks/first_hour.sh [FOLDER]
# with ASTROFM_DATA pointing at the development data (../shared/data by default).
D=$(cd "${ASTROFM_DATA:-../shared/data}" && pwd)
R=${1:-/tmp/astrofm-first-hour}
[ -e "$R" ] && { echo "$R exists: give a new folder" >&2; exit 2; }
mkdir -p "$R" && cd "$R"
t() { local s=$(date +%s.%N); "$@" > out.log 2>&1; local rc=$?; local e=$(date +%s.%N)
      printf "%7.1f s  rc=%d  %s\n" "$(echo "$e - $s" | bc)" $rc "$*"; [ $rc -ne 0 ] && tail -3 out.log; tail -n +1 out.log >> all.log; }
SP=$(ls $D/spitzer/*.fits | head -1); CAT=$(ls $D/spitzer/*.vot* $D/spitzer/*.xml 2>/dev/null | head -1)
F1=$(ls $D/first_fits/*.fits | head -1)
t astrofm demo -o astrofm-demo
t astrofm models
t astrofm info "$SP"
t astrofm sources "$SP" -o sp.ecsv --regions sp.reg
t astrofm crossmatch sp.ecsv "$CAT" --max-sep 2arcsec -o sp_match.ecsv
t astrofm sources "$F1" -o first.ecsv --regions first.crtf
t astrofm cutouts "$F1" first.ecsv -o first_cut.fits --size 48
t astrofm morphology first_cut.fits -o morph.ecsv
t astrofm cutouts --stamps $D/vlass/fits -o vlass.fits --size 64
t astrofm embed vlass.fits -o vlass_feat.fits
t astrofm map vlass_feat.fits -o vlass_map.png --table vlass_map.ecsv
t astrofm similar vlass_feat.fits --query 1 -k 8 -o vlass_sim.png
t astrofm cutouts --stamps $D/decals_rings --pixel-scale 0.262 --size 128 -o rings.fits
t astrofm train rings.fits --labels $D/decals_rings/catalog.csv --id-column file=file_name --label-column ring -o rings_model
t astrofm classify rings.fits --model rings_model -o rings_pred.ecsv
t astrofm train-detector $D/first_fits --epochs 2 -o det
t astrofm detect "$F1" --model det -o det.ecsv --regions det.reg
t astrofm attention vlass.fits --weights random --rows 0:2 -o attn.png
t astrofm sources "$F1" -o first_dask.ecsv --workers 2
grep -h "label\|p_compact\|agree" astrofm-demo/*.txt 2>/dev/null | head -15
# fluxes against the Spitzer catalogue's (mJy at 4.5 micron), over the matched sources
python - <<'PY'
import numpy as np
import astropy.units as u
from astropy.table import QTable
t = QTable.read("sp_match.ecsv")
ours, theirs = t["flux"].to_value(u.mJy), np.asarray(t["f4_5"].to_value(u.mJy))
ok = np.isfinite(ours) & np.isfinite(theirs) & (theirs > 0)
r = ours[ok] / theirs[ok]
print(f"Spitzer fluxes, ours / catalogue over {ok.sum()} matches: median {np.median(r):.3f}, "
      f"quartiles {np.percentile(r, 25):.3f}-{np.percentile(r, 75):.3f}")
PY
