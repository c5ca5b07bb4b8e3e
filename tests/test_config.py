"""Experiment configs: the six shipped configs carry the paper's values; every bad case is one clear UserError."""

import copy
import json

import pytest

from testkit import ROOT
from synthhist.config import load_experiment
from synthhist.errors import UserError

CONFIGS = sorted(p for p in (ROOT / "experiment").glob("*/*.json") if p.parent.name != "demo")  # demo needs its data
SHA = "0" * 64


def test_six_configs_with_paper_values():
    exps = {p.stem: load_experiment(p) for p in CONFIGS}
    assert sorted(exps) == ["breast_er_classifier", "breast_er_gan", "lung_adeno_squam_classifier",
                            "lung_adeno_squam_gan", "thyroid_brs_classifier", "thyroid_brs_gan"]
    tile_kwargs = {"qc": "both", "grayspace_fraction": 1, "roi_method": "inside", "img_format": "png"}
    for stem, e in exps.items():
        assert e.kind == stem.rsplit("_", 1)[1] and e.tile_kwargs == tile_kwargs
        assert e.annotations.url.startswith("https://raw.githubusercontent.com/jamesdolezal/synthetic-histology/")
        assert len(e.annotations.sha256) == 64 and e.rois.size > 1_000_000
        if e.kind == "classifier":
            assert (e.tile_px, e.tile_um, e.hp["model"], e.hp["batch_size"], e.hp["epochs"]) == (299, 302, "xception", 128, [1])
            assert e.hp["learning_rate"] == 1e-4 and e.hp["augment"] == "xyrjb" and e.hp["normalizer"] == "reinhard_fast"
            assert e.train_kwargs == {} and e.gan_kwargs == {}
        else:
            assert e.tile_px == 512 and e.hp == {} and e.gan_kwargs["cfg"] == "stylegan2"
    g = {k: (e.tile_um, e.gan_kwargs["gamma"], e.gan_kwargs["batch"], e.gan_kwargs["gpus"], e.gan_kwargs["kimg"])
         for k, e in exps.items() if e.kind == "gan"}
    assert g == {"breast_er_gan": (400, 1.6384, 32, 4, 10000), "lung_adeno_squam_gan": (400, 1.6384, 32, 4, 25000),
                 "thyroid_brs_gan": (302, 3.2768, 16, 2, 12720)}
    assert exps["thyroid_brs_classifier"].outcome == "brs" and exps["thyroid_brs_gan"].outcome == "brs_class"
    assert exps["thyroid_brs_classifier"].hp["loss"] == "mean_squared_error"
    assert exps["thyroid_brs_classifier"].hp["training_balance"] == "patient"
    assert exps["lung_adeno_squam_classifier"].hp["training_balance"] == "category"
    assert exps["breast_er_gan"].outcome == "ER_Status_By_IHC" and exps["lung_adeno_squam_gan"].outcome == "subtype"
    assert {e.name for e in exps.values()} == {"TCGA_BRCA", "TCGA_LUNG", "TCGA_THCA"}
    assert exps["thyroid_brs_gan"].tile_label == "512px_302um"


@pytest.fixture
def gan_cfg():
    return json.loads((ROOT / "experiment/lung/lung_adeno_squam_gan.json").read_text())


@pytest.fixture
def clf_cfg():
    return json.loads((ROOT / "experiment/thyroid/thyroid_brs_classifier.json").read_text())


def _load(tmp_path, cfg, name="exp.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg) if not isinstance(cfg, str) else cfg)
    return load_experiment(path)


def _set(cfg, dotted, value):
    cfg = copy.deepcopy(cfg)
    *parents, last = dotted.split(".")
    d = cfg
    for p in parents:
        d = d[p]
    if value is _DELETE:
        del d[last]
    else:
        d[last] = value
    return cfg


class _Delete:
    """The key is removed instead of set."""

    def __repr__(self) -> str:
        return "<deleted>"  # a stable test id (pytest-xdist workers must collect the same names)


_DELETE = _Delete()

GAN_BAD = [
    ("colour", "blue", "unknown key colour"),
    ("gan_kwargs.lr", 0.1, "unknown key gan_kwargs.lr"),
    ("tile_kwargs.stride", 2, "unknown key tile_kwargs.stride"),
    ("annotations.md5", "x", "unknown key annotations.md5"),
    ("tile_px", "512", "tile_px must be an integer"),
    ("tile_px", 512.0, "tile_px must be an integer"),
    ("tile_px", True, "tile_px must be an integer"),
    ("tile_um", "400", "tile_um must be a number"),
    ("tile_um", -1, "tile_um must be positive"),
    ("gan_kwargs.batch", "32", "gan_kwargs.batch must be an integer"),
    ("gan_kwargs.gamma", None, "gan_kwargs.gamma must be a number"),
    ("gan_kwargs.gpus", 3, "gan_kwargs.batch (32) must be a multiple of gpus (3)"),
    ("gan_kwargs.cfg", "stylegan3-t", "gan_kwargs.cfg must be one of stylegan2"),
    ("tile_kwargs.roi_method", "middle", "tile_kwargs.roi_method must be one of"),
    ("tile_kwargs.grayspace_fraction", 2, "tile_kwargs.grayspace_fraction must be in [0, 1]"),
    ("outcome", _DELETE, "missing key outcome"),
    ("gan_kwargs.kimg", _DELETE, "missing key gan_kwargs.kimg"),
    ("gan_kwargs", _DELETE, "gan_kwargs is required for kind 'gan'"),
    ("kind", "vae", "kind must be one of gan, classifier"),
    ("name", "../evil", "name must be letters"),
    ("hp", {}, "hp belongs in a classifier config"),
    ("annotations.sha256", _DELETE, "annotations.sha256 is required with annotations.url"),
    ("annotations.sha256", "ABC", "annotations.sha256 must be 64 lowercase hex digits"),
    ("annotations.url", "ftp://x/y.csv", "annotations.url must start with http"),
    ("annotations", "missing.csv", "annotations.path: file not found"),
    ("annotations", {"path": "missing.csv", "url": "https://x/y.csv", "sha256": SHA}, "exactly one of 'url' or 'path'"),
    ("rois", {"path": "nope.tar.gz"}, "rois.path: file not found"),
    ("rois.filename", "../x.tar.gz", "rois.filename must be a plain file name"),
    ("rois.size", "9", "rois.size must be an integer"),
]


@pytest.mark.parametrize("key,value,message", GAN_BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in GAN_BAD])
def test_bad_gan_config(tmp_path, gan_cfg, key, value, message):
    with pytest.raises(UserError, match="exp.json: ") as e:
        _load(tmp_path, _set(gan_cfg, key, value))
    assert message in str(e.value) and "\n" not in str(e.value)


CLF_BAD = [
    ("hp.dropout", "0.1", "hp.dropout must be a number"),
    ("hp.early_stop", 0, "hp.early_stop must be true/false"),
    ("hp.epochs", 1, "hp.epochs must be a list"),
    ("hp.epochs", [0], "hp.epochs must be a non-empty list of positive integers"),
    ("hp.optimiser", "Adam", "unknown key hp.optimiser"),
    ("hp.tile_px", 512, "hp.tile_px (512) differs from the top-level tile_px (299)"),
    ("hp.tile_um", 400, "hp.tile_um (400) differs from the top-level tile_um (302)"),
    ("backend", "torch", "backend must be one of tensorflow"),
    ("kind", _DELETE, None),  # set below: with hp and gan_kwargs both present
    ("hp.training_balance", "sites", "hp.training_balance must be one of"),
    ("hp.normalizer", 3, "hp.normalizer must be a string or null"),
    ("hp", _DELETE, "hp is required for kind 'classifier'"),
    ("gan_kwargs", {"batch": 1}, "gan_kwargs belongs in a GAN config"),
    ("train_kwargs.k", 3, "unknown key train_kwargs.k"),
    ("train_kwargs.val_strategy", "random", "train_kwargs.val_strategy must be one of"),
]


@pytest.mark.parametrize("key,value,message", CLF_BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in CLF_BAD])
def test_bad_classifier_config(tmp_path, clf_cfg, key, value, message):
    cfg = _set(clf_cfg, key, value)
    if message is None:
        cfg["gan_kwargs"], message = {"gamma": 1, "batch": 4, "gpus": 1, "kimg": 1}, "both gan_kwargs and hp"
    with pytest.raises(UserError) as e:
        _load(tmp_path, cfg)
    assert message in str(e.value)


NON_FINITE = [("tile_um", "NaN"), ("gan_kwargs.gamma", "NaN"), ("gan_kwargs.glr", "Infinity"),
              ("tile_kwargs.grayspace_fraction", "-Infinity")]


@pytest.mark.parametrize("key,value", NON_FINITE)
def test_non_finite_numbers_are_refused(tmp_path, gan_cfg, key, value):
    text = json.dumps(_set(gan_cfg, key, "@@")).replace('"@@"', value)  # NaN as Python's json writes it
    with pytest.raises(UserError, match=f"exp.json: {key} must be a finite number, got"):
        _load(tmp_path, text)


def test_non_finite_hp_in_a_dict(tmp_path, clf_cfg):
    from synthhist.config import parse_experiment
    with pytest.raises(UserError, match=r"hp.epochs\[0\] must be a finite number"):
        parse_experiment(_set(clf_cfg, "hp.epochs", [float("nan")]), tmp_path)


def _original(tmp_path, kind):
    """A config as the original repository's experiments/lung/ has it: no kind, relative paths."""
    (tmp_path / "lung_labels.csv").write_text("patient,subtype,site,slide\n")
    (tmp_path / "lung_rois.tar.gz").write_bytes(b"\x1f\x8b")
    cfg = {"name": "TCGA_LUNG", "annotations": "./lung_labels.csv", "rois": "./lung_rois.tar.gz",
           "outcome": "subtype", "tile_px": 299, "tile_um": 302,
           "tile_kwargs": {"qc": "both", "grayspace_fraction": 1, "roi_method": "inside", "img_format": "png"}}
    if kind == "gan":
        return {**cfg, "tile_px": 512, "tile_um": 400, "gan_kwargs": {
            "model": "stylegan3", "cfg": "stylegan2", "gamma": 1.6384, "batch": 32, "gpus": 4, "kimg": 25000}}
    return {**cfg, "backend": "tensorflow", "hp": {
        "tile_px": 299, "tile_um": 302, "model": "xception", "pooling": "avg", "hidden_layers": 2,
        "hidden_layer_width": 1024, "dropout": 0.1, "loss": "sparse_categorical_crossentropy", "batch_size": 128,
        "epochs": [1], "augment": "xyrjb", "normalizer": "reinhard_fast", "learning_rate_decay": 0.98,
        "learning_rate_decay_steps": 512, "training_balance": "category", "early_stop": True,
        "early_stop_method": "accuracy"}}


def test_original_gan_config(tmp_path):
    e = _load(tmp_path, _original(tmp_path, "gan"), "lung_adeno_squam_gan.json")
    assert e.kind == "gan" and e.hp == {} and e.gan_kwargs["kimg"] == 25000 and e.tile_label == "512px_400um"
    assert e.annotations.path == (tmp_path / "lung_labels.csv").resolve() and e.annotations.filename == "lung_labels.csv"
    assert e.rois.path == (tmp_path / "lung_rois.tar.gz").resolve()


def test_original_classifier_config_takes_slideflow_defaults(tmp_path, caplog):
    from synthhist.classifier.hparams import DEFAULT_HP, complete_hp
    with caplog.at_level("INFO", logger="synthhist"):
        e = _load(tmp_path, _original(tmp_path, "classifier"), "lung_adeno_squam_classifier.json")
    assert e.kind == "classifier" and e.gan_kwargs == {}
    assert sorted(e.hp) == sorted(DEFAULT_HP)                       # every key in effect, as params.json lists them
    assert (e.hp["tile_px"], e.hp["tile_um"], e.hp["hidden_layers"], e.hp["epochs"]) == (299, 302, 2, [1])
    assert (e.hp["learning_rate"], e.hp["optimizer"], e.hp["l2"], e.hp["normalizer_source"]) == (0.0001, "Adam", 0, None)
    assert e.hp["validation_balance"] == "none" and e.hp["uq"] is False
    assert complete_hp(e.hp) == {**e.hp, "epochs": [1]}              # what training writes to params.json
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "take slideflow's defaults" in logged and "normalizer_source=null" in logged and "optimizer=\"Adam\"" in logged
    assert "hidden_layers=" not in logged


def test_original_config_top_level_tile_only_in_hp_defaults(tmp_path):
    cfg = _original(tmp_path, "classifier")
    del cfg["hp"]["tile_px"], cfg["hp"]["tile_um"]
    cfg["tile_px"], cfg["tile_um"] = 256, 128
    e = _load(tmp_path, cfg)
    assert (e.hp["tile_px"], e.hp["tile_um"]) == (256, 128)         # not slideflow's 299/302 defaults


def test_kind_cannot_be_inferred(tmp_path):
    cfg = _original(tmp_path, "gan")
    del cfg["gan_kwargs"]
    with pytest.raises(UserError, match="neither gan_kwargs nor hp"):
        _load(tmp_path, cfg)


def test_map_depth_is_the_mapping_depth(tmp_path, gan_cfg):
    e = _load(tmp_path, _set(gan_cfg, "gan_kwargs.map_depth", 2))
    assert e.gan_kwargs["map_depth"] == 2
    from synthhist.gan.train.options import resolve_options
    assert resolve_options(e.gan_kwargs, e.tile_px, {}).map_layers == 2
    with pytest.raises(UserError, match="map and gan_kwargs.map_depth are the same setting"):
        _load(tmp_path, _set(_set(gan_cfg, "gan_kwargs.map_depth", 2), "gan_kwargs.map", 8))


def test_validation_strategies_come_from_one_table(tmp_path, clf_cfg):
    from synthhist.classifier.splits import VALIDATION_STRATEGIES
    for strategy in VALIDATION_STRATEGIES:
        assert _load(tmp_path, _set(clf_cfg, "train_kwargs.val_strategy", strategy)).train_kwargs["val_strategy"] == strategy


def test_original_lfs_pointer_rois(tmp_path):
    from synthhist.wsi.resources import fetch_resource
    cfg = _original(tmp_path, "gan")
    (tmp_path / "lung_rois.tar.gz").write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n")
    e = _load(tmp_path, cfg)
    with pytest.raises(UserError, match="is a Git LFS pointer"):
        fetch_resource(e.rois, tmp_path / "out.tar.gz", "ROIs")


def test_not_json_and_not_found(tmp_path):
    with pytest.raises(UserError, match="exp.json: not valid JSON"):
        _load(tmp_path, "{name: ")
    with pytest.raises(UserError, match="must be a JSON object"):
        _load(tmp_path, "[1]")
    with pytest.raises(UserError, match="experiment config not found"):
        load_experiment(tmp_path / "nope.json")


def test_local_paths_resolve_against_the_config(tmp_path, gan_cfg):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/my.csv").write_text("patient,slide,subtype\n")
    (tmp_path / "cfg").mkdir()
    cfg = _set(_set(gan_cfg, "annotations", "../labels/my.csv"), "rois", None)
    e = _load(tmp_path / "cfg", cfg)
    assert e.annotations.path == (tmp_path / "labels/my.csv").resolve() and e.annotations.url is None
    assert e.annotations.filename == "my.csv" and e.rois is None and e.base_dir == (tmp_path / "cfg").resolve()
    e = _load(tmp_path / "cfg", _set(cfg, "annotations", {"path": "../labels/my.csv", "filename": "labels.csv"}))
    assert e.annotations.filename == "labels.csv"


def test_script_reports_bad_config_in_one_line(tmp_path, gan_cfg, script):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_set(gan_cfg, "gan_kwargs.batch", "32")))
    proc = script("train_gan.py", "--exp", path, "--outdir", tmp_path / "p", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Error: bad.json: gan_kwargs.batch must be an integer, got \"32\""
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_original_classifier_config_trains_and_params_json_holds_the_defaults(tmp_path, script):
    from clf_fixtures import KINDS, write_labels, write_slides

    from synthhist.classifier.hparams import DEFAULT_HP

    kinds = {f"slide{c}{i}": kind for c, kind in enumerate(KINDS) for i in range(2)}
    write_slides(tmp_path, kinds)
    write_labels(tmp_path, kinds)
    cfg = {"name": "clf_test", "backend": "tensorflow", "annotations": "./labels.csv", "outcome": "kind",
           "tile_px": 72, "tile_um": 36,
           "tile_kwargs": {"qc": None, "roi_method": "ignore", "grayspace_fraction": 1, "img_format": "png"},
           "hp": {"tile_px": 72, "tile_um": 36, "model": "xception", "pooling": "avg", "batch_size": 8,
                  "epochs": [1], "augment": None, "normalizer": None}}
    (tmp_path / "exp.json").write_text(json.dumps(cfg))
    proc = script("train_classifier.py", "--exp", tmp_path / "exp.json", "--outdir", tmp_path, "--val-strategy",
                  "none", "--weights", "none", timeout=1200)
    assert "take slideflow's defaults" in proc.stderr
    params = json.loads(next((tmp_path / "models").glob("*/params.json")).read_text())
    hp = params["hp"]
    assert set(hp) == set(DEFAULT_HP) and (hp["tile_px"], hp["tile_um"], hp["batch_size"]) == (72, 36, 8)
    assert (hp["hidden_layers"], hp["learning_rate"], hp["optimizer"], hp["training_balance"]) == (0, 0.0001, "Adam", "category")


def test_ada_kimg_sets_the_ada_speed(tmp_path, gan_cfg):
    from synthhist.gan.train.options import resolve_options

    e = _load(tmp_path, _set(gan_cfg, "gan_kwargs.ada_kimg", 100))
    assert resolve_options(e.gan_kwargs, e.tile_px, {}).ada_kimg == 100
    assert resolve_options(_load(tmp_path, gan_cfg).gan_kwargs, e.tile_px, {}).ada_kimg == 500  # the reference's
