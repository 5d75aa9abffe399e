# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The options that several ``astrofm`` subcommands share, each defined once.

Every subcommand that has one of these options spells it, types it and
documents it the same way, in its "common options" group and in the same
order: ``-o/--output``, ``--overwrite``, ``--model``, ``--weights``,
``--device``, ``--batch-size``, ``--workers``, ``--scheduler``, ``--seed``,
``-v/--verbose``, ``-q/--quiet``.
"""

import argparse
import math

__all__ = ["COMMON", "add_common", "add_image_options", "RegistryChoices", "add_strategy_options",
           "add_labelled_cutouts", "key_values", "scheduler_of", "number_in", "number_or",
           "positive_int", "non_negative_int", "positive_float", "non_negative_float", "sky_angle",
           "fraction", "probability", "add_region_options", "region_style_of",
           "POSITIONS", "add_position_options", "positions_of"]


def _bound(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def number_in(low=None, high=None, *, integer=False, low_open=False, high_open=False,
              name=None):
    """
    An `argparse` type: a finite number (or an integer) within bounds.

    A value out of bounds, not a number, NaN or infinite is refused while
    the command line is parsed (exit code 2, before any work) with a
    message that says what the option takes.

    Parameters
    ----------
    low, high : float, optional
        The bounds (None: unbounded on that side).
    integer : bool, optional
        Take integers only.
    low_open, high_open : bool, optional
        Exclude the bound itself.
    name : str, optional
        The type's name (as `argparse` shows it).

    Returns
    -------
    parse : callable
        The type: text to ``int`` or ``float``; its ``what`` attribute
        describes the values it takes (``"an integer >= 1"``).

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import number_in
    >>> alpha = number_in(0, 1, low_open=True, high_open=True)
    >>> alpha("0.1"), alpha.what
    (0.1, 'a number in (0, 1)')
    >>> parser = argparse.ArgumentParser(prog="astrofm", exit_on_error=False)
    >>> _ = parser.add_argument("--alpha", type=alpha)
    >>> parser.parse_args(["--alpha", "1.5"])
    Traceback (most recent call last):
    ...
    argparse.ArgumentError: argument --alpha: must be a number in (0, 1), not '1.5'
    """
    noun = "an integer" if integer else "a number"
    if low is not None and high is not None:
        what = (f"{noun} in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}"
                f"{')' if high_open else ']'}")
    elif low is not None:
        what = f"{noun} {'>' if low_open else '>='} {_bound(low)}"
    elif high is not None:
        what = f"{noun} {'<' if high_open else '<='} {_bound(high)}"
    else:
        what = noun if integer else "a finite number"

    def parse(text):
        try:
            value = int(text) if integer else float(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not math.isfinite(value) \
                or (low is not None and (value <= low if low_open else value < low)) \
                or (high is not None and (value >= high if high_open else value > high)):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return value

    parse.__name__ = parse.__qualname__ = name or "number"
    parse.__doc__ = f"`argparse` type of {what} (made by `number_in`)."
    parse.what = what
    return parse


def number_or(word, number):
    """
    An `argparse` type: a number (an `number_in` type) or one word.

    Examples
    --------
    >>> from astrofmtools.cli.options import number_or, positive_int
    >>> size = number_or("bbox", positive_int)
    >>> size("64"), size("bbox"), size.what
    (64, 'bbox', "an integer >= 1 or 'bbox'")
    """
    what = f"{number.what} or {word!r}"

    def parse(text):
        if text == word:
            return text
        try:
            return number(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None

    parse.__name__ = parse.__qualname__ = f"{number.__name__}_or_{word}"
    parse.what = what
    return parse


def sky_angle(text):
    """
    An `argparse` type: an angle on the sky, ``3arcsec``, ``0.1arcmin``, ``2"``, or a number
    of arcsec; returned as a `~astropy.units.Quantity` in arcsec.

    Examples
    --------
    >>> from astrofmtools.cli.options import sky_angle
    >>> sky_angle("3arcsec"), sky_angle("0.1arcmin"), sky_angle("2")  # doctest: +FLOAT_CMP
    (<Quantity 3. arcsec>, <Quantity 6. arcsec>, <Quantity 2. arcsec>)
    """
    import astropy.units as u
    from astropy.coordinates import Angle
    value = None
    try:
        value = float(text) * u.arcsec
    except ValueError:
        try:
            value = Angle(text)
        except (ValueError, TypeError, u.UnitsError):
            try:
                value = u.Quantity(text)
            except (ValueError, TypeError):
                value = None
    if value is None or value.unit.physical_type != "angle" or not value.isscalar \
            or not 0 < value.to_value(u.deg) < 180:
        raise argparse.ArgumentTypeError(f"must be a positive angle such as 3arcsec, 0.1arcmin "
                                         f"or a number of arcsec, not {text!r}")
    return u.Quantity(value, u.arcsec)


#: `argparse` types of the numeric options, used by every subcommand: an integer >= 1
#: (epochs, sizes, batch sizes), an integer >= 0, a number > 0 (learning rates,
#: thresholds in sigma, FWHMs), a number >= 0, a fraction in (0, 1] and a probability
#: in [0, 1].
#: The argparse types of the common kinds of number (see `number_in`).
positive_int = number_in(1, integer=True, name="positive_int")
non_negative_int = number_in(0, integer=True, name="non_negative_int")
positive_float = number_in(0, low_open=True, name="positive_float")
non_negative_float = number_in(0, name="non_negative_float")
fraction = number_in(0, 1, low_open=True, name="fraction")
probability = number_in(0, 1, name="probability")

#: The shared definition of each common option: its flags and `argparse` keywords.
#: ``%(default)s`` in a help text shows the subcommand's default.
COMMON = {
    "output": (("-o", "--output"), {
        "required": True, "metavar": "PATH", "help": "output file"}),
    "overwrite": (("--overwrite",), {
        "action": "store_true",
        "help": "replace existing outputs (without it an existing output is an error and "
                "nothing is written)"}),
    "model": (("--model",), {
        "default": "efficientnet_lite0",
        "help": "backbone name (see astrofmtools.backbones.list_backbones; default: "
                "efficientnet_lite0, which needs no download)"}),
    "weights": (("--weights",), {
        "default": None, "metavar": "FILE",
        "help": "backbone weights file (.safetensors or .pth), or 'random' (default: the "
                "pretrained weights from the local cache, or the hub when online)"}),
    "device": (("--device",), {
        "default": None,
        "help": "torch device, e.g. cpu, cuda or cuda:1 (default: $ASTROFM_DEVICE if set, "
                "else cuda if available, else cpu)"}),
    "batch_size": (("--batch-size",), {
        "type": positive_int, "default": None, "metavar": "N",
        "help": "images per batch through the model (cutouts, tiles or training crops); "
                "lower it if memory runs out (default: the library's for the command)"}),
    "workers": (("--workers",), {
        "type": positive_int, "default": None, "metavar": "N",
        "help": "run the independent pieces (tiles, inputs) on a local Dask cluster of N "
                "worker processes (default: serially, in this process)"}),
    "scheduler": (("--scheduler",), {
        "default": None, "metavar": "ADDRESS",
        "help": "run on a running Dask cluster: its scheduler's address (tcp://host:8786) or "
                "scheduler file (.json); or a scheduler's name: serial, threads, dask "
                "(default: dask with --workers, else serial)"}),
    "seed": (("--seed",), {
        "type": non_negative_int, "default": 0, "metavar": "N",
        "help": "random seed: the same seed gives the same result (default: %(default)s)"}),
    "verbose": (("-v", "--verbose"), {
        "action": "store_true", "help": "say more; print the traceback of an error"}),
    "quiet": (("-q", "--quiet"), {
        "action": "store_true", "help": "print nothing but errors; no progress bars"}),
}

_ORDER = ("output", "overwrite", "model", "weights", "device", "batch_size", "workers",
          "scheduler", "seed")


def _add(group, name, override):
    flags, kwargs = COMMON[name]
    kwargs = dict(kwargs)
    if isinstance(override, str):
        kwargs["help"] = override
    elif isinstance(override, dict):
        kwargs.update(override)
    group.add_argument(*flags, **kwargs)


def add_common(parser, output=None, *, model=None, weights=None, device=False,
               batch_size=False, workers=False, seed=False):
    """
    Add the common options of a subcommand, in their fixed order.

    Each option is added when its argument is given: `True` adds it as
    `COMMON` defines it, a string replaces only its help text, a dict
    updates its `argparse` keywords (``help``, ``default``, ``required``);
    `None` or `False` leaves it out. ``-v/--verbose`` and ``-q/--quiet``
    are always added.

    Parameters
    ----------
    parser : `argparse.ArgumentParser`
        The subcommand's parser.
    output : str or dict, optional
        The help of ``-o/--output`` (what the output is). With it the
        subcommand also gets ``--overwrite``.
    model, weights, device, batch_size, seed : bool, str or dict, optional
        Whether to add ``--model``, ``--weights``, ``--device``,
        ``--batch-size`` and ``--seed``, and how they differ here.
    workers : bool, optional
        Whether to add ``--workers`` and ``--scheduler`` (read them with
        `scheduler_of`).

    Returns
    -------
    group : `argparse._ArgumentGroup`
        The "common options" group.

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import add_common
    >>> parser = argparse.ArgumentParser()
    >>> _ = add_common(parser, "catalogue (.ecsv)", device=True, seed=True)
    >>> parser.parse_args(["-o", "out.ecsv", "--seed", "3"])
    Namespace(output='out.ecsv', overwrite=False, device=None, seed=3, verbose=False, quiet=False)
    """
    group = parser.add_argument_group(
        "common options", "spelt and meant the same in every subcommand that has them")
    chosen = {"output": output, "overwrite": bool(output), "model": model, "weights": weights,
              "device": device, "batch_size": batch_size, "workers": workers,
              "scheduler": workers, "seed": seed}
    for name in _ORDER:
        if chosen[name] is not None and chosen[name] is not False:
            _add(group, name, chosen[name])
    verbosity = group.add_mutually_exclusive_group()
    _add(verbosity, "verbose", True)
    _add(verbosity, "quiet", True)
    return group


def scheduler_of(args):
    """
    The ``scheduler`` and ``workers`` of the library from ``--scheduler`` and ``--workers``.

    Parameters
    ----------
    args : `argparse.Namespace`
        Parsed arguments of a subcommand with ``--workers`` and ``--scheduler``.

    Returns
    -------
    scheduler, workers : str or None, int or None
        ``--scheduler`` when given; else ``"dask"`` (a local cluster) when
        ``--workers`` is more than 1; else None (serial).

    Raises
    ------
    astrofmtools.InputError
        For ``--workers`` below 1.

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import scheduler_of
    >>> scheduler_of(argparse.Namespace(workers=4, scheduler=None))
    ('dask', 4)
    >>> scheduler_of(argparse.Namespace(workers=None, scheduler="tcp://10.0.0.1:8786"))
    ('tcp://10.0.0.1:8786', None)
    """
    from ..exceptions import InputError
    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}.")
    if scheduler is None and workers is not None and workers > 1:
        scheduler = "dask"
    return scheduler, workers


def add_image_options(parser, image_help=None, *, optional=False):
    """
    Add the image argument and ``--hdu`` / ``--plane`` of `~astrofmtools.io.load_image`.

    ``image_help`` replaces the help of the image argument; ``optional``
    makes it optional (``nargs='?'``), for a subcommand that reads its
    images some other way too (``astrofm cutouts --stamps``).

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import add_image_options
    >>> parser = argparse.ArgumentParser()
    >>> add_image_options(parser)
    >>> parser.parse_args(["cube.fits", "--plane", "0,2"]).plane
    '0,2'
    """
    parser.add_argument("image", nargs="?" if optional else None, default=None,
                        help=image_help or "FITS image (any HDU; radio cubes with length-1 "
                                           "axes)")
    parser.add_argument("--hdu", default=None,
                        help="HDU index or EXTNAME (default: first HDU with image data)")
    parser.add_argument("--plane", default=None,
                        help="for cubes: 0-based plane index, comma-separated for several axes")


#: The shared definition of the options that name a table's position columns
#: (`add_position_options`): the library's ``xy=`` and ``sky=``.
POSITIONS = {
    "xy": (("--xy",), {
        "default": None, "metavar": "X,Y",
        "help": "pixel position columns of {what} (0-based), e.g. X_IMAGE,Y_IMAGE "
                "(default: x,y when {what} has them, else its sky positions)"}),
    "sky": (("--sky",), {
        "default": None, "metavar": "LON,LAT[:FRAME]",
        "help": "sky position columns of {what}: a SkyCoord column or LON,LAT column names, "
                "with a frame after a colon, e.g. RAJ2000,DEJ2000, l,b or lon,lat:galactic "
                "(default: sky_centroid, ra/dec, RAJ2000/DEJ2000, ..., GLON/GLAT, l/b, "
                "ELON/ELAT found by name; l/b and GLON/GLAT are galactic, other names icrs)"}),
}


def add_position_options(parser, what="TABLE", *, xy=True, sky=True):
    """
    Add ``--xy X,Y`` and ``--sky LON,LAT[:FRAME]``: the position columns of a table.

    They are the library's ``xy=`` and ``sky=`` (`~astrofmtools.schema.parse_positions`
    reads them); given together they are an error. `positions_of` checks
    them against the table and returns the library's keywords.

    Parameters
    ----------
    parser : `argparse.ArgumentParser`
        The subcommand's parser.
    what : str, optional
        How the help names the table (``TABLE``, ``--stamp-table``).
    xy, sky : bool, optional
        Which of the two to add.

    Returns
    -------
    group : `argparse._MutuallyExclusiveGroup`

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import add_position_options
    >>> parser = argparse.ArgumentParser()
    >>> _ = add_position_options(parser)
    >>> args = parser.parse_args(["--sky", "GLON,GLAT:galactic"])
    >>> args.xy, args.sky
    (None, 'GLON,GLAT:galactic')
    """
    group = parser.add_mutually_exclusive_group()
    for name, wanted in (("xy", xy), ("sky", sky)):
        if wanted:
            flags, kwargs = POSITIONS[name]
            group.add_argument(*flags, **dict(kwargs, help=kwargs["help"].format(what=what)))
    return group


def positions_of(args, table, name, *, kind="any", required=True):
    """
    The library's ``xy=`` / ``sky=`` keywords of ``--xy`` / ``--sky``, checked on the table.

    The positions are read once here with the options' own names in any
    error (``--xy``, ``--sky``), so a command-line user is never told about
    keyword arguments.

    Parameters
    ----------
    args : `argparse.Namespace`
        Parsed arguments with ``xy`` and/or ``sky`` (`add_position_options`).
    table : `~astropy.table.Table`
        The table the options describe.
    name : str
        How messages call it (its file name).
    kind : {'any', 'sky', 'pixel'}, optional
        What the command needs without an option: ``'any'`` (pixels
        first), sky or pixel positions.
    required : bool, optional
        Whether a table without positions is an error.

    Returns
    -------
    keywords : dict
        ``{'xy': ...}``, ``{'sky': ...}`` or ``{}`` (the table's own columns).

    Raises
    ------
    astrofmtools.InputError
        For positions that cannot be read (the message names ``--xy`` or ``--sky``).

    Examples
    --------
    >>> import argparse
    >>> from astropy.table import QTable
    >>> from astrofmtools.cli.options import positions_of
    >>> table = QTable({"X_IMAGE": [3.0], "Y_IMAGE": [4.0]})
    >>> positions_of(argparse.Namespace(xy="X_IMAGE,Y_IMAGE", sky=None), table, "cat.ecsv")
    {'xy': 'X_IMAGE,Y_IMAGE'}
    >>> positions_of(argparse.Namespace(xy=None, sky=None), table, "cat.ecsv")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: cat.ecsv has no source positions: ... --xy or --sky.
    """
    from ..schema import parse_positions
    xy, sky = getattr(args, "xy", None), getattr(args, "sky", None)
    if xy is not None:
        parse_positions(table, xy, kind="pixel", name=name, argument="--xy")
        return {"xy": xy}
    if sky is not None:
        parse_positions(table, sky, kind="sky", name=name, argument="--sky")
        return {"sky": sky}
    options = {"any": "--xy or --sky", "sky": "--sky", "pixel": "--xy"}[kind]
    parse_positions(table, kind=kind, name=name, argument=options, required=required)
    return {}


class RegistryChoices:
    """
    The names of a registry as `argparse` choices, read when first needed.

    Parsing ``astrofm info`` never imports torch: the registry (of
    strategies, of heads) is imported only when an option that uses it is
    given or its help is shown, and it lists what is registered then, plug-ins
    included.

    Parameters
    ----------
    module : str
        The module that holds the registry (``"astrofmtools.adapt"``).
    function : str
        Its function that lists the names (``"list_strategies"``), or a
        sequence of names it holds (``"METRICS"``).

    Examples
    --------
    >>> from astrofmtools.cli.options import RegistryChoices
    >>> "lora" in RegistryChoices("astrofmtools.adapt", "list_strategies")
    True
    """

    def __init__(self, module, function):
        self.module, self.function = module, function

    def _names(self):
        import importlib
        names = getattr(importlib.import_module(self.module), self.function)
        return list(names() if callable(names) else names)

    def __contains__(self, name):
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())


def key_values(pairs, option):
    """
    ``KEY=VALUE`` strings as a dict; values read as JSON where they parse (numbers, lists).

    Examples
    --------
    >>> from astrofmtools.cli.options import key_values
    >>> key_values(["n_blocks=1", "target_modules=[\\"qkv\\"]", "name=x"], "--strategy-option")
    {'n_blocks': 1, 'target_modules': ['qkv'], 'name': 'x'}
    """
    import json
    from ..exceptions import InputError
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} takes KEY=VALUE; got {pair!r}.")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def add_strategy_options(parser, default):
    """
    Add ``--strategy`` (any registered strategy) and ``--strategy-option KEY=VALUE``.

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import add_strategy_options
    >>> parser = argparse.ArgumentParser()
    >>> add_strategy_options(parser, "frozen")
    >>> args = parser.parse_args(["--strategy", "partial", "--strategy-option", "n_blocks=1"])
    >>> args.strategy, args.strategy_option
    ('partial', ['n_blocks=1'])
    """
    parser.add_argument("--strategy", default=default,
                        choices=RegistryChoices("astrofmtools.adapt", "list_strategies"),
                        metavar="NAME",
                        help="how the backbone adapts: frozen, partial, finetune, lora, bitfit "
                             "or any registered strategy (astrofmtools.adapt.list_strategies; "
                             f"default: {default})")
    parser.add_argument("--strategy-option", action="append", default=None,
                        metavar="KEY=VALUE",
                        help="an option of the strategy, e.g. n_blocks=1 (partial) or lora_r=4 "
                             "(lora); repeat for several")


def add_labelled_cutouts(parser, cutouts_help="cutout stack written by 'astrofm cutouts'"):
    """
    Add what a training command reads: the cutouts, their labels, the strategy and the head.

    ``cutouts`` (positional), ``--labels``, ``--label-column``,
    ``--drop-unlabelled``, the strategy options (`add_strategy_options`,
    default ``frozen``) and ``--head``, spelled the same on ``astrofm
    train`` and ``astrofm label-curve``.

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import add_labelled_cutouts
    >>> parser = argparse.ArgumentParser()
    >>> add_labelled_cutouts(parser)
    >>> args = parser.parse_args(["c.fits", "--label-column", "class", "--drop-unlabelled"])
    >>> args.label_column, args.drop_unlabelled, args.head
    ('class', True, 'linear')
    """
    parser.add_argument("cutouts", help=cutouts_help)
    parser.add_argument("--labels", default=None, metavar="TABLE",
                        help="table of labels (.csv, .ecsv, .fits, .vot): joined to the "
                             "cutouts by --id-column, or by sky position with --match-radius, "
                             "else row-aligned with them (default: the label column of the "
                             "cutouts' own table)")
    parser.add_argument("--label-column", default="label", help="column holding the classes")
    join = parser.add_mutually_exclusive_group()
    join.add_argument("--id-column", default=None, metavar="NAME",
                      help="join --labels to the cutouts on this column, which both tables have, "
                           "or on CUTOUTS_COLUMN=LABELS_COLUMN (e.g. file=file_name) when "
                           "they name it differently (numbers or text; file columns are "
                           "matched on file names) (default: 'id' when both have it)")
    join.add_argument("--match-radius", default=None, type=sky_angle, metavar="ANGLE",
                      help="join --labels to the cutouts on the sky: each cutout takes the "
                           "label of the nearest labelled position within ANGLE (3arcsec, "
                           "0.1arcmin, or a number of arcsec)")
    add_position_options(parser, "--labels (with --match-radius)", xy=False)
    parser.add_argument("--drop-unlabelled", action="store_true",
                        help="leave out the cutouts whose label is blank or missing (and say "
                             "how many); without it they are an error that names the rows")
    add_strategy_options(parser, "frozen")
    parser.add_argument("--preprocess", action="append", default=None, metavar="KEY=VALUE",
                        help="a preprocessing setting (astrofmtools.backbones.Preprocess), "
                             "e.g. input_size=64 or zoom=2 (the central half); repeat for "
                             "several (default: the backbone's)")
    parser.add_argument("--head", default="linear",
                        choices=RegistryChoices("astrofmtools.classify", "list_heads"),
                        metavar="NAME",
                        help="classification head: linear, mlp, whitening, knn, logistic or "
                             "any registered head (astrofmtools.classify.list_heads; default: "
                             "linear)")


def add_region_options(parser):
    """
    Add ``--region-text/--no-region-text`` and ``--region-color-by`` (with ``--regions``).

    One definition for every subcommand that writes regions; `region_style_of`
    turns the parsed options into `~astrofmtools.catalog.write_regions`
    keywords.

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import add_region_options, region_style_of
    >>> parser = argparse.ArgumentParser()
    >>> add_region_options(parser)
    >>> region_style_of(parser.parse_args([]))
    {'text': 'auto', 'color_by': None}
    >>> region_style_of(parser.parse_args(["--no-region-text", "--region-color-by", "snr"]))
    {'text': False, 'color_by': 'snr'}
    """
    # the catalog's REGION_TEXT_LIMIT, not imported: parsing imports no astropy or regions
    limit = 100
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--region-text", dest="region_text", action="store_const", const=True,
                       default="auto",
                       help="label every region (class and score, or id), however many; by "
                            f"default only files of at most {limit} regions are "
                            "labelled")
    group.add_argument("--no-region-text", dest="region_text", action="store_const",
                       const=False, help="no labels on the regions")
    parser.add_argument("--region-color-by", default=None, metavar="COLUMN",
                        help="colour the regions by this column: classes (label) take a "
                             "colour-blind safe palette, numbers (score, snr, flux) the "
                             "viridis colour map (default: by class when there is a label "
                             "column, else green)")


def region_style_of(args):
    """
    The `~astrofmtools.catalog.write_regions` keywords of `add_region_options`.

    Examples
    --------
    >>> import argparse
    >>> from astrofmtools.cli.options import region_style_of
    >>> region_style_of(argparse.Namespace(region_text=True, region_color_by="label"))
    {'text': True, 'color_by': 'label'}
    """
    return {"text": getattr(args, "region_text", "auto"),
            "color_by": getattr(args, "region_color_by", None)}
