# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The report of a study (`write_study_report`): which backbone, preprocessing and
adaptation win on this data, by how much and how surely (paired over seeds), at what
cost, the effect of each factor, the figures, and the command that trains the winner.

It is built once as a list of blocks (headings, paragraphs, tables, pictures, code) and
written twice, as ``report.md`` and as a self-contained ``report.html``.
"""

import html
import shlex
from pathlib import Path

import numpy as np

from ..utils import atomic_output
from .compare import best_settings, factor_effects, paired_difference
from .config import _method_name

__all__ = ["write_study_report", "train_command"]


def _f(value, digits=3):
    return "—" if value is None or not np.isfinite(float(value)) else f"{float(value):.{digits}f}"


def _signed(value):
    return "—" if not np.isfinite(float(value)) else f"{float(value):+.3f}"


def train_command(config, setting):
    """
    The command that trains one setting of a study on all its labels (``astrofm train``;
    ``astrofm train-detector`` for detection).

    Parameters
    ----------
    config : `~astrofmtools.study.StudyConfig`
    setting : tuple of str
        (backbone label, preprocessing variant, method name), as in the results.

    Returns
    -------
    command : str

    Examples
    --------
    >>> from astrofmtools.study import StudyConfig, train_command
    >>> config = StudyConfig({"data": "cutouts.fits", "labels": "class",
    ...                       "preprocess": {"crop": {"input_size": 64, "zoom": 2}},
    ...                       "methods": [{"strategy": "finetune", "head": "linear",
    ...                                    "epochs": 8}]})
    >>> print(train_command(config, ("efficientnet_lite0", "crop",
    ...                              "finetune/linear(epochs=8)")))
    astrofm train cutouts.fits --label-column class --model efficientnet_lite0
    --strategy finetune --head linear --epochs 8 --preprocess input_size=64
    --preprocess zoom=2 -o model/
    """
    backbone, variant, method = setting
    entry = next(b for b in config.backbones if b["label"] == backbone)
    chosen = next(m for m in config.methods if _method_name(m) == method)
    words = config.task.command(config, entry, chosen, config.preprocess[variant])
    return " ".join(shlex.quote(w) for w in words)


def _blocks(config, results, title, figures):
    metric = config.metric
    name = config.task.metric_labels.get(metric, metric)
    fraction = float(np.max(results["label_fraction"]))
    ranking = best_settings(results, metric, fraction)
    blocks = [("h1", title),
              ("p", f"{len(results)} cells: {len(set(results['backbone']))} backbones x "
                    f"{len(set(results['preprocess_name']))} preprocessing variants x "
                    f"{len(set(results['method']))} adaptations x "
                    f"{len(set(results['label_fraction']))} label fractions x "
                    f"{len(set(results['seed']))} seeds, scored by {name} on "
                    f"{int(results['n_test'][0])} test "
                    f"{'cutouts' if config.task.maps else 'images'}.")]
    if not len(ranking):
        return blocks + [("p", "No cell has a result yet.")]
    top = ranking[0]
    win = tuple(str(top[c]) for c in ("backbone", "preprocess_name", "method"))
    blocks += [("h2", "The winner"),
               ("p", f"With all the labels (fraction {fraction:g}), **{' / '.join(win)}** "
                     f"scores {name} {_f(top[f'{metric}_mean'])} ± "
                     f"{_f(top[f'{metric}_std'])} over {top['n_seeds']} seeds, in "
                     f"{_f(top['seconds'], 1)} s per cell with "
                     f"{int(top['n_trainable']):,} trainable parameters.")]
    compared = [("the runner-up", ranking[1])] if len(ranking) > 1 else []
    cheapest = int(np.argmin(ranking["seconds"]))
    if cheapest > 1:
        compared.append(("the cheapest setting", ranking[cheapest]))
    rows = []
    for what, row in compared:
        other = tuple(str(row[c]) for c in ("backbone", "preprocess_name", "method"))
        d = paired_difference(results, win, other, metric, fraction)
        rows.append([what, " / ".join(other), _f(row[f"{metric}_mean"]),
                     _f(row["seconds"], 1), _signed(d["mean"]),
                     f"[{_signed(d['low'])}, {_signed(d['high'])}]",
                     f"{d['wins']} of {d['n']}"])
    if rows:
        blocks += [("p", "The winner against others, paired by seed (the same labelled "
                         "subset and test rows): the mean difference, its 95 % interval "
                         "(paired t) and the seeds it wins."),
                   ("table", ["against", "setting", name, "seconds", "difference",
                              "95 % interval", "wins"], rows)]
    if "frozen" in set(results["strategy"]):
        blocks.append(("p", "Frozen cells of one backbone and preprocessing share their "
                            "features: the first of them carries their extraction in its "
                            "seconds, the others fit a head only."))
    blocks += [("p", "To train it on all the labels:"),
               ("code", train_command(config, win))]
    per_fraction = []
    for f in sorted({float(v) for v in results["label_fraction"]}):
        best = best_settings(results, metric, f)[0]
        per_fraction.append([f"{f:g}", " / ".join(str(best[c]) for c in
                                                  ("backbone", "preprocess_name", "method")),
                             f"{_f(best[f'{metric}_mean'])} ± {_f(best[f'{metric}_std'])}"])
    blocks += [("h2", "Best setting per label fraction"),
               ("table", ["label fraction", "setting", name], per_fraction)]
    effects = factor_effects(results, metric)
    if len(effects):
        blocks += [("h2", "Effect of each choice"),
                   ("p", "Each level against the first of its factor, paired on every other "
                         "setting, label fraction and seed (pairs across backbones and "
                         "fractions are not independent: read the interval as indicative)."),
                   ("table", ["factor", "level", "against", "pairs", "mean difference",
                              "95 % interval", "wins"],
                    [[e["factor"], e["level"], e["baseline"], str(e["n"]),
                      _signed(e["mean"]), f"[{_signed(e['low'])}, {_signed(e['high'])}]",
                      f"{e['wins']} of {e['n']}"] for e in effects])]
    if len(set(results["backbone"])) > 1:
        within = factor_effects(results, metric, by="backbone")
        if len(within):
            blocks += [("p", "The same within each backbone (a choice may help one backbone "
                             "and hurt another):"),
                       ("table", ["backbone", "factor", "level", "against", "pairs",
                                  "mean difference", "95 % interval", "wins"],
                        [[e["backbone"], e["factor"], e["level"], e["baseline"], str(e["n"]),
                          _signed(e["mean"]), f"[{_signed(e['low'])}, {_signed(e['high'])}]",
                          f"{e['wins']} of {e['n']}"] for e in within])]
    blocks.append(("h2", "Figures"))
    blocks += [("img", str(path), caption) for path, caption in figures]
    blocks += [("h2", f"All settings at label fraction {fraction:g}"),
               ("table", ["backbone", "preprocessing", "adaptation", name, "seconds",
                          "trainable"],
                [[str(r["backbone"]), str(r["preprocess_name"]), str(r["method"]),
                  f"{_f(r[f'{metric}_mean'])} ± {_f(r[f'{metric}_std'])}",
                  _f(r["seconds"], 1), f"{int(r['n_trainable']):,}"] for r in ranking])]
    return blocks


def _markdown(blocks):
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "code":
            out.append(f"```\n{block[1]}\n```")
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _bold(text):
    parts = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _html(blocks, title):
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_bold(block[1])}</p>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(block[1])}</code></pre>")
        elif kind == "img":
            body.append(f'<figure><img src="{html.escape(block[1])}" alt="'
                        f'{html.escape(block[2])}"><figcaption>{html.escape(block[2])}'
                        "</figcaption></figure>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) +
                           "</tr>" for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
             "img{max-width:100%}pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{style}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_study_report(config, results, folder, figures=(), title=None):
    """
    Write ``report.md`` and ``report.html`` of a study into its folder.

    The report names the winning setting at the largest label fraction with
    its score, cost and trainable parameters; compares it with the runner-up
    and the cheapest setting, paired by seed (`paired_difference`); gives the
    ``astrofm train`` command for it (`train_command`), the best setting per
    label fraction, the effect of each factor (`factor_effects`), the figures
    and every setting's score.

    Parameters
    ----------
    config : `~astrofmtools.study.StudyConfig`
    results : `~astropy.table.Table`
        One row per cell (``results.ecsv``).
    folder : str or `~pathlib.Path`
        The study folder; figure paths are written relative to it.
    figures : sequence of (path, caption), optional
    title : str, optional
        Default: "Study of <data file>".

    Returns
    -------
    paths : list of `~pathlib.Path`
        The Markdown and HTML files.

    Examples
    --------
    See `~astrofmtools.study.run_study`, which writes the report.
    """
    folder = Path(folder)
    data = config.data.name if isinstance(config.data, Path) else "the cutouts given"
    title = title or f"Study of {data}"
    figures = [(Path(p).relative_to(folder) if Path(p).is_relative_to(folder) else p, c)
               for p, c in figures]
    blocks = _blocks(config, results, title, figures)
    paths = []
    for name, text in (("report.md", _markdown(blocks)), ("report.html",
                                                          _html(blocks, title))):
        with atomic_output(folder / name, overwrite=True) as tmp:
            Path(tmp).write_text(text)
        paths.append(folder / name)
    return paths
