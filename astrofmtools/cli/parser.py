# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The argument parser of ``astrofm``: the subcommands and their examples."""

import argparse

from .. import __version__
from . import (commands_catalog, commands_classify, commands_curve, commands_detect,
               commands_embed, commands_image, commands_models, commands_morphology,
               commands_pretrain, commands_study)

__all__ = ["EPILOG", "build_parser"]

#: The example(s) at the end of each subcommand's ``--help``.
EPILOG = {
    "sources": "example:\n  astrofm sources mosaic.fits -o sources.ecsv --regions sources.reg",
    "cutouts": "examples:\n  astrofm cutouts mosaic.fits sources.ecsv -o cutouts.fits --size 64\n"
               "  astrofm cutouts first.fits sources.ecsv --band wise_w1.fits -o cutouts.fits",
    "info": "example:\n  astrofm info mosaic.fits",
    "models": "examples:\n  astrofm models\n  astrofm models --json > models.json",
    "demo": "example:\n  astrofm demo -o astrofm-demo",
    "embed": "example:\n  astrofm embed cutouts.fits -o features.fits --model efficientnet_lite0",
    "similar": "examples:\n  astrofm similar features.fits --query 42 -k 8 -o similar.png\n"
               "  astrofm similar features.fits --position \"150.1 2.2\" --cutouts cutouts.fits "
               "-o similar.png --table similar.ecsv",
    "attention": "example:\n  astrofm attention cutouts.fits --model dinov2_vits14 "
                 "-o attention.png --rows 0:8 --crop 1 --crop auto",
    "map": "examples:\n  astrofm map features.fits --color class -o umap.png --table umap.ecsv\n"
           "  astrofm map sample.fits --fit-on survey.fits --labels labels.ecsv "
           "--label-column class -o sample_umap.png",
    "train": "example:\n  astrofm train cutouts.fits --labels labels.ecsv --label-column class "
             "--model efficientnet_lite0 --strategy frozen -o model_dir/",
    "classify": "example:\n  astrofm classify cutouts.fits --model model_dir/ -o predictions.ecsv "
                "--regions predictions.reg",
    "train-detector": "examples:\n  astrofm train-detector images/ --boxes boxes.ecsv "
                      "--model efficientnet_lite0 -o det_dir/\n"
                      "  astrofm train-detector images/ --boxes regions/ "
                      "--label-column label -o det_dir/\n  astrofm train-detector field.fits "
                      "--boxes find_sources --strategy frozen -o det_dir/",
    "detect": "example:\n  astrofm detect mosaic.fits --model det_dir/ -o detections.ecsv "
              "--regions detections.reg --tile 512 --overlap 64",
    "crossmatch": "examples:\n"
                  "  astrofm crossmatch predictions.ecsv reference.fits --max-sep 5arcsec "
                  "-o matched.ecsv\n"
                  "  astrofm crossmatch sources.ecsv nvss.vot --max-sep 0.25arcmin --mode all "
                  "--keep-unmatched -o matched.fits",
}

#: The modules that declare the subcommands, in the order ``astrofm --help`` lists them.
_MODULES = (commands_image, commands_models, commands_embed, commands_pretrain,
            commands_classify, commands_curve, commands_detect, commands_catalog,
            commands_morphology, commands_study)


def build_parser():
    """
    The argument parser of the ``astrofm`` command.

    Each subcommand's parsed arguments carry the function that runs it as
    ``run``.

    Returns
    -------
    parser : `argparse.ArgumentParser`

    Examples
    --------
    >>> from astrofmtools.cli import build_parser
    >>> args = build_parser().parse_args(["info", "mosaic.fits"])
    >>> args.command, args.image, args.run.__name__
    ('info', 'mosaic.fits', 'cmd_info')
    """
    parser = argparse.ArgumentParser(
        prog="astrofm",
        description="Foundation-model tools for astronomical FITS images.",
        epilog="Run 'astrofm COMMAND --help' for a command's options and an example.\n"
               "Exit codes: 0 success, 2 bad usage or input, 1 internal error, "
               "130 interrupted.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"astrofmtools {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def add(name, help_, run):
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".",
                           epilog=EPILOG[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(run=run)
        return p

    for module in _MODULES:
        module.add_parsers(add)
    return parser
