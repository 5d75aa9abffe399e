# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A study's comparisons (paired by seed), figures, report, winner's command and maps."""

import shlex
from pathlib import Path

import numpy as np
import pytest
from astropy.table import QTable

from astrofmtools.study.compare import best_settings, factor_effects, paired_difference
from astrofmtools.study.figures import pareto_front

_NAMES = ("backbone", "preprocess_name", "method", "label_fraction", "seed", "macro_f1",
          "seconds", "n_trainable")


def _results(crop_effect=0.05, finetune_effect=0.10, seed_spread=0.1, noise=0.005, seeds=5):
    """A grid with known effects; each seed shifts every cell alike (the subset's luck)."""
    rng = np.random.default_rng(1)
    luck = rng.normal(0, seed_spread, seeds)
    rows = []
    for backbone in ("a", "b"):
        for prep in ("full", "crop"):
            for method, seconds in (("frozen/linear", 1.0), ("finetune/linear", 50.0)):
                for fraction in (0.1, 1.0):
                    for seed in range(seeds):
                        score = (0.6 + 0.1 * fraction + crop_effect * (prep == "crop")
                                 + finetune_effect * (method == "finetune/linear")
                                 + luck[seed] + rng.normal(0, noise))
                        rows.append((backbone, prep, method, fraction, seed, score,
                                     seconds * (1 + (backbone == "b")), 10))
    return QTable(rows=rows, names=_NAMES)


def test_factor_effects_recover_the_known_effects():
    effects = {(e["factor"], e["level"]): e for e in factor_effects(_results())}
    crop, tune, backbone = (effects["preprocessing", "crop"],
                            effects["adaptation", "finetune/linear"],
                            effects["backbone", "b"])
    assert crop["n"] == tune["n"] == backbone["n"] == 2 * 2 * 2 * 5
    assert crop["mean"] == pytest.approx(0.05, abs=0.003)
    assert tune["mean"] == pytest.approx(0.10, abs=0.003)
    assert crop["low"] > 0 and tune["low"] > 0 and crop["wins"] == crop["n"]
    assert backbone["low"] < 0 < backbone["high"]  # no effect: the interval holds 0


def test_pairing_by_seed_removes_the_luck_of_the_labelled_subset():
    results = _results(seed_spread=0.2)
    win, other = ("a", "crop", "frozen/linear"), ("a", "full", "frozen/linear")
    d = paired_difference(results, win, other, fraction=1.0)
    ranking = best_settings(results, fraction=1.0)
    unpaired = {tuple(r[c] for c in ("backbone", "preprocess_name", "method")):
                r["macro_f1_std"] for r in ranking}
    assert d["n"] == 5 and d["wins"] == 5
    assert d["mean"] == pytest.approx(0.05, abs=0.01)
    assert d["std"] < 0.02 < unpaired[win]  # the seeds' spread cancels in the difference
    assert 0 < d["low"] < d["high"] < 0.1 and d["p"] < 0.01


def test_best_settings_ranks_by_mean_then_cost():
    ranking = best_settings(_results(), fraction=1.0)
    assert ranking[0]["preprocess_name"] == "crop" and ranking[0]["method"] == "finetune/linear"
    assert len(ranking) == 8 and np.all(np.diff(ranking["macro_f1_mean"]) <= 0)


def test_pareto_front_keeps_only_undominated_settings():
    cost = [1, 1, 2, 5, 10, 20]
    score = [0.6, 0.5, 0.7, 0.65, 0.9, 0.85]
    assert pareto_front(cost, score).tolist() == [0, 2, 4]


def test_figures_draw_one_line_per_backbone_and_variant(tmp_path):
    from astrofmtools.study import plot_study_cost, plot_study_fractions, plot_study_methods
    results = _results(noise=0)  # backbone b: a's scores at twice the cost
    fig = plot_study_fractions(results, path=tmp_path / "f.png")
    assert [ax.get_title() for ax in fig.axes] == ["frozen/linear", "finetune/linear"]
    assert fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is not None
    assert sorted(fig.axes[1].get_legend_handles_labels()[1]) == [
        "a / crop", "a / full", "b / crop", "b / full"]
    fig = plot_study_methods(results, path=tmp_path / "m.png")
    assert len(fig.axes) == 2 and len(fig.axes[0].containers) == 2 * 2  # backbones x methods
    fig = plot_study_cost(results, path=tmp_path / "c.png")
    front = [line for line in fig.axes[0].get_lines() if line.get_label() == "Pareto front"]
    assert len(front[0].get_xdata()) == 2  # a/crop frozen (cheapest), a/crop finetune (best)
    for name in ("f.png", "m.png", "c.png"):
        assert (tmp_path / name).stat().st_size > 10_000


@pytest.fixture
def study(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from astrofmtools.datasets import make_radio_cutouts
    monkeypatch.chdir(tmp_path)
    make_radio_cutouts(n_per_class=20, size=32).write("cutouts.fits")
    return {"data": "cutouts.fits", "labels": "class",
            "backbones": ["efficientnet_lite0",
                          {"name": "efficientnet_lite0", "weights": "random"}],
            "preprocess": {"full": {"input_size": 32}, "crop": {"input_size": 32, "zoom": 2}},
            "methods": ["frozen/knn", "frozen/logistic"], "fractions": [0.5, 1.0],
            "seeds": 2, "classifier": {"tta": False}}


def test_report_names_the_winner_and_its_command_trains_it(study):
    from astrofmtools.study import StudyConfig, run_study
    from astrofmtools.cli import main
    result = run_study(study, "out", maps=False)
    assert len(result.results) == 2 * 2 * 2 * 2 * 2
    ranking = best_settings(result.results)
    win = tuple(str(ranking[0][c]) for c in ("backbone", "preprocess_name", "method"))
    report = Path("out/report.md").read_text()
    assert f"**{' / '.join(win)}**" in report
    assert f"{ranking[0]['macro_f1_mean']:.3f}" in report
    assert "| the runner-up |" in report and "| preprocessing | crop | full | 16 |" in report
    html = Path("out/report.html").read_text()
    assert html.count("<img") == 3 and f"<b>{' / '.join(win)}</b>" in html
    command = report.split("```\n")[1].split("\n")[0]
    words = shlex.split(command)
    assert words[:3] == ["astrofm", "train", "cutouts.fits"]
    assert main(words[1:-1] + ["model", "-q"]) == 0
    from astrofmtools.classify import Classifier
    model = Classifier.load("model")
    config = StudyConfig(study)
    for key, value in config.preprocess[win[1]].items():
        assert getattr(model.preprocess_, key) == value
    assert (model.strategy, model.head) == tuple(win[2].split("/"))


def test_random_backbone_entries_are_labelled_and_keyed_apart(study, tmp_path):
    from astrofmtools.study import StudyConfig, cell_key, study_cells
    from astrofmtools.exceptions import InputError
    cells = study_cells(study)
    assert {c["backbone"] for c in cells} == {"efficientnet_lite0", "efficientnet_lite0-random"}
    first = [c for c in cells if c["backbone"] == "efficientnet_lite0"][0]
    other = [c for c in cells if c["backbone"] != "efficientnet_lite0"][0]
    assert cell_key(first, "d") != cell_key(other, "d")
    assert cell_key(first, "d") == cell_key(dict(first, backbone="renamed"), "d")
    with pytest.raises(InputError, match="weights file .*nothere.safetensors"):
        missing = {"name": "efficientnet_lite0", "weights": "nothere.safetensors"}
        StudyConfig(dict(study, backbones=[missing]))
    with pytest.raises(InputError, match="each entry needs its own label"):
        StudyConfig(dict(study, backbones=["efficientnet_lite0", "efficientnet_lite0"]))


@pytest.mark.slow
def test_maps_are_drawn_once_per_backbone(study):
    from astrofmtools.study import run_study
    study = dict(study, methods=["frozen/knn"], fractions=[1.0], seeds=1)
    run_study(study, "out")
    maps = sorted(p.name for p in Path("out").glob("map_*.png"))
    assert maps == ["map_efficientnet_lite0-random.png", "map_efficientnet_lite0.png"]
    from matplotlib.image import imread
    assert imread("out/map_efficientnet_lite0.png").shape[1] == 2 * 440  # two variants
    stamp = Path("out/map_efficientnet_lite0.png").stat().st_mtime_ns
    run_study(study, "out")  # drawn once
    assert Path("out/map_efficientnet_lite0.png").stat().st_mtime_ns == stamp
    assert Path("out/report.md").read_text().count("map_") == 2


@pytest.fixture
def detection_study(tmp_path, monkeypatch):
    """Three synthetic radio fields with their true boxes, and a tiny ViT (random weights)."""
    pytest.importorskip("torchvision")
    from astropy.table import vstack
    from astrofmtools.backbones import BackboneSpec, register_backbone
    from astrofmtools.backbones.registry import _REGISTRY
    from astrofmtools.datasets import make_radio_field
    from astrofmtools.io import write_image
    monkeypatch.chdir(tmp_path)
    Path("images").mkdir()
    tables = []
    for seed in range(3):
        image, truth = make_radio_field((96, 96), n_compact=6, n_extended=0, n_artefacts=0,
                                        snr_range=(20, 300), seed=seed)
        write_image(image, f"images/field{seed}.fits")
        truth["image"] = f"field{seed}.fits"
        tables.append(truth)
    vstack(tables, metadata_conflicts="silent").write("boxes.ecsv")
    register_backbone(BackboneSpec(
        name="test_study_vit", timm_name="vit_tiny_patch16_224", patch_size=16, input_size=64,
        feature_dim=32, licence="none",
        timm_kwargs={"img_size": 64, "depth": 1, "embed_dim": 32, "num_heads": 2,
                     "dynamic_img_size": True}))
    yield {"task": "detection", "data": "images", "boxes": "boxes.ecsv", "labels": "kind",
           "test_fraction": 0.3,
           "backbones": [{"name": "test_study_vit", "weights": "random"}],
           "preprocess": {"z1": {"zoom": 1, "crop_size": 64}},
           "methods": [{"strategy": "finetune", "epochs": 1}], "fractions": [0.5, 1.0],
           "seeds": 1,
           "classifier": {"batch_size": 2, "fpn_channels": 16, "representation_size": 32,
                          "device": "cpu"}}
    _REGISTRY.remove("test_study_vit")


def test_a_detection_config_is_checked_and_its_command_is_train_detector(detection_study):
    from astrofmtools.study import StudyConfig, study_cells, train_command
    from astrofmtools.cli import build_parser
    from astrofmtools.exceptions import InputError
    config = StudyConfig(detection_study)
    assert config.metric == "map50" and config.methods[0]["head"] == "faster_rcnn"
    assert [c["method"] for c in study_cells(config)] == ["finetune/faster_rcnn(epochs=1)"] * 2
    command = train_command(config, ("test_study_vit-random", "z1",
                                     "finetune/faster_rcnn(epochs=1)"))
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.command == "train-detector" and args.zoom == 1 and args.crop_size == 64
    assert args.epochs == 1 and args.boxes.endswith("boxes.ecsv")
    with pytest.raises(InputError, match="takes zoom, crop_size"):
        StudyConfig(dict(detection_study, preprocess={"s": {"stretch": "asinh"}}))
    with pytest.raises(InputError, match="one head, 'faster_rcnn'"):
        StudyConfig(dict(detection_study, methods=["finetune/linear"]))
    with pytest.raises(InputError, match="must be one of map50, recall50"):
        StudyConfig(dict(detection_study, metric="macro_f1"))


def test_a_detection_study_scores_map_on_held_out_images(detection_study):
    from astrofmtools.study import run_study
    result = run_study(detection_study, "out")
    results = result.results
    assert len(results) == 2 and set(results["n_test"]) == {1}  # one image of three
    # half of the two training images is one image (6 boxes); all of them 12
    assert sorted(results["n_labels"]) == [6, 12]
    assert np.all((results["map50"] >= 0) & (results["map50"] <= 1))
    assert "astrofm train-detector" in Path("out/report.md").read_text()
    assert not list(Path("out").glob("map_*.png"))  # no cutouts to map
    again = run_study(detection_study, "out")
    assert again.ran == [] and len(again.cached) == 2


def test_effects_within_each_backbone_show_an_interaction():
    results = _results(noise=0)
    # the crop helps backbone a and hurts backbone b
    sign = np.where((results["backbone"] == "b") & (results["preprocess_name"] == "crop"), -2, 0)
    results["macro_f1"] += 0.05 * sign
    pooled = {(e["factor"], e["level"]): e["mean"] for e in factor_effects(results)}
    within = factor_effects(results, by="backbone")
    crop = {e["backbone"]: e["mean"] for e in within if e["factor"] == "preprocessing"}
    assert pooled["preprocessing", "crop"] == pytest.approx(0.0, abs=1e-9)  # cancels out
    assert crop == pytest.approx({"a": 0.05, "b": -0.05})
    assert "backbone" not in set(within["factor"])
