"""Project folder, resources (annotations, ROI archives) and prepare_project / the training scripts'
shared options, end to end against a fake GDC server."""

import hashlib
import importlib.util
import io
import json
import sys
import tarfile
import types

import pytest

from fake_gdc import FakeGdc
from testkit import ROOT
from synthhist.config import Resource, load_experiment
from synthhist.errors import UserError
from synthhist.wsi.prepare import prepare_project
from synthhist.wsi.project import Project
from synthhist.wsi.resources import extract_rois, fetch_resource
from synthhist.wsi.synthetic import write_synthetic_slide

ROI = b"ROI_name,X_base,Y_base\nROI_0,256,256\nROI_0,1280,256\nROI_0,1280,768\nROI_0,256,768\n"
LABELS = "patient,slide,subtype\nP1,S1,adeno\nP2,S2,squam\nP3,S3,squam\nP4,,adeno\n"
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 9108301\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tar_bytes(members: dict[str, bytes], links: dict[str, str] = {}) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    """Bytes of two small slides: glass on the left third, tissue on the rest."""
    out = tmp_path_factory.mktemp("slides")
    return [write_synthetic_slide(out / f"{i}.svs", 1536, 1024, 0.5, [("blank", (0, 0, 512, 1024))], seed=i,
                                  compression="zlib").read_bytes() for i in range(2)]


@pytest.fixture
def gdc(slides, monkeypatch):
    """Fake GDC ($SYNTHHIST_GDC_URL) with slides S1, S2 (S3 unknown), labels CSV and ROI archive as static files."""
    with FakeGdc() as server:
        monkeypatch.setenv("SYNTHHIST_GDC_URL", server.url)
        for name, data in zip(("S1", "S2"), slides):
            server.add(f"{name}.svs", data)
        server.static["labels.csv"] = LABELS.encode()
        server.static["rois.tar.gz"] = tar_bytes({"rois/S1.csv": ROI, "rois/S2.csv": ROI, "rois/S3.csv": ROI})
        yield server


def write_config(tmp_path, gdc, kind="gan", tile_px=64, tile_um=128, **changes):
    cfg = {
        "name": "TEST", "kind": kind, "outcome": "subtype", "tile_px": tile_px, "tile_um": tile_um,
        "annotations": {"url": f"{gdc.url}/static/labels.csv", "sha256": sha(gdc.static["labels.csv"])},
        "rois": {"url": f"{gdc.url}/static/rois.tar.gz", "sha256": sha(gdc.static["rois.tar.gz"])},
        "tile_kwargs": {"qc": "both", "grayspace_fraction": 1, "roi_method": "inside", "img_format": "png"},
    }
    if kind == "gan":
        cfg["gan_kwargs"] = {"gamma": 1.0, "batch": 4, "gpus": 1, "kimg": 1}
    else:
        cfg["hp"] = json.loads((ROOT / "experiment/lung/lung_adeno_squam_classifier.json")
                               .read_text())["hp"]
    cfg.update(changes)
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(cfg))
    return path


# ---------------------------------------------------------------- resources

def test_fetch_resource_checks_sha256_and_lfs(gdc, tmp_path):
    data = gdc.static["labels.csv"]
    res = Resource("labels.csv", url=f"{gdc.url}/static/labels.csv", sha256=sha(data))
    assert fetch_resource(res, tmp_path / "a.csv", "annotations").read_bytes() == data
    n = len(gdc.requests)
    fetch_resource(res, tmp_path / "a.csv", "annotations")          # present and verified: no request
    assert len(gdc.requests) == n

    bad = Resource("labels.csv", url=res.url, sha256="0" * 64)
    with pytest.raises(UserError, match="annotations: sha256 mismatch"):
        fetch_resource(bad, tmp_path / "b.csv", "annotations")
    assert not (tmp_path / "b.csv").exists()

    gdc.static["lfs.tar.gz"] = LFS_POINTER
    lfs = Resource("lfs.tar.gz", url=f"{gdc.url}/static/lfs.tar.gz", sha256="0" * 64)
    with pytest.raises(UserError, match="is a Git LFS pointer"):
        fetch_resource(lfs, tmp_path / "lfs.tar.gz", "ROI archive")
    assert not (tmp_path / "lfs.tar.gz").exists()
    sized = Resource("lfs.tar.gz", url=f"{gdc.url}/static/lfs.tar.gz", sha256="0" * 64, size=9108301)
    with pytest.raises(UserError, match="is a Git LFS pointer"):                  # no retries on a wrong size
        fetch_resource(sized, tmp_path / "lfs.tar.gz", "ROI archive")
    assert sum(p == "/static/lfs.tar.gz" for _, p, _ in gdc.requests) == 2
    assert not list(tmp_path.glob("lfs*"))

    missing = Resource("x.csv", url=f"{gdc.url}/static/x.csv", sha256="0" * 64)
    with pytest.raises(UserError, match="not found"):
        fetch_resource(missing, tmp_path / "x.csv", "annotations")

    local = tmp_path / "local.csv"
    local.write_bytes(data)
    assert fetch_resource(Resource("l.csv", path=local), tmp_path / "copy.csv", "annotations").read_bytes() == data


def test_extract_rois_flattens_and_skips_links(tmp_path):
    archive = tmp_path / "r.tar.gz"
    archive.write_bytes(tar_bytes({"rois/S1.csv": ROI, "S2.csv": ROI, "README.txt": b"hi"}, {"S3.csv": "/etc/passwd"}))
    assert extract_rois(archive, tmp_path / "roi") == 2
    assert sorted(p.name for p in (tmp_path / "roi").iterdir()) == [".extracted", "S1.csv", "S2.csv"]
    (tmp_path / "roi/S1.csv").unlink()
    assert extract_rois(archive, tmp_path / "roi") == 2           # done before: not unpacked again
    assert not (tmp_path / "roi/S1.csv").exists()


def test_extract_rois_bounds_members(tmp_path, monkeypatch):
    from synthhist.wsi import resources

    monkeypatch.setattr(resources, "MAX_ROI_BYTES", 1000)
    archive = tmp_path / "r.tar.gz"
    archive.write_bytes(tar_bytes({"S1.csv": ROI, "S2.csv": ROI + b"ROI_0,1,1\n" * 200}))
    with pytest.raises(UserError, match="member 'S2.csv' is 2.* bytes, over the"):
        extract_rois(archive, tmp_path / "roi")
    assert not (tmp_path / "roi/S1.csv").exists()              # checked before anything is written
    monkeypatch.setattr(resources, "MAX_ROI_MEMBERS", 3)
    archive.write_bytes(tar_bytes({f"S{i}.csv": ROI for i in range(4)}))
    with pytest.raises(UserError, match="more than 3 members"):
        extract_rois(archive, tmp_path / "roi")


@pytest.mark.parametrize("content,message", [
    (tar_bytes({"../evil.csv": ROI}), "unsafe member path '../evil.csv'"),
    (tar_bytes({"/abs/evil.csv": ROI}), "unsafe member path"),
    (b"\x1f\x8b not really gzip", "is not a readable tar archive"),
    (LFS_POINTER, "is a Git LFS pointer"),
    (tar_bytes({"S1.csv": b"x,y\n1,2\n"}), "not a ROI CSV"),
    (tar_bytes({"notes.txt": b"x"}), "holds no <slide>.csv files"),
    (tar_bytes({"a/S1.csv": ROI, "b/S1.csv": ROI + b"ROI_1,0,0\n"}),
     "'a/S1.csv' and 'b/S1.csv' are both ROIs of slide S1"),
])
def test_extract_rois_errors(tmp_path, content, message):
    archive = tmp_path / "r.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(UserError, match="ROI archive") as e:
        extract_rois(archive, tmp_path / "out/roi")
    assert message in str(e.value)
    assert not (tmp_path / "evil.csv").exists() and not (tmp_path / "out/evil.csv").exists()
    assert not (tmp_path / "out/roi/.extracted").exists()


# ---------------------------------------------------------------- project

def test_project_layout_and_ownership(gdc, tmp_path):
    exp = load_experiment(write_config(tmp_path, gdc))
    p = Project(tmp_path / "proj", exp).ensure()
    assert p.tfrecord_dir == tmp_path / "proj/tfrecords/64px_128um" and p.tfrecord_dir.is_dir()
    assert p.annotations == tmp_path / "proj/labels.csv"
    for d in (p.slides_dir, p.roi_dir, p.models_dir, p.gan_dir, p.logs_dir):
        assert d.is_dir()
    (p.slides_dir / "sub").mkdir()
    (p.slides_dir / "sub/S2.tif").write_bytes(b"x")
    (p.slides_dir / "S1.svs").write_bytes(b"x")
    (p.slides_dir / "S3.txt").write_bytes(b"x")
    assert p.find_slides(["S1", "S2", "S3"]) == {"S1": p.slides_dir / "S1.svs", "S2": p.slides_dir / "sub/S2.tif"}
    other = load_experiment(write_config(tmp_path, gdc, name="OTHER"))
    with pytest.raises(UserError, match="is the project of 'TEST', not 'OTHER'"):
        Project(tmp_path / "proj", other).ensure()


# ---------------------------------------------------------------- prepare

def test_prepare_downloads_verifies_and_resumes(gdc, tmp_path):
    exp = load_experiment(write_config(tmp_path, gdc))
    project = prepare_project(exp, tmp_path / "proj", download=True, md5=True, extract=False)
    assert sorted(p.name for p in project.slides_dir.iterdir()) == ["S1.svs", "S2.svs"]
    assert sorted(p.name for p in project.roi_dir.glob("*.csv")) == ["S1.csv", "S2.csv", "S3.csv"]
    assert project.annotations.read_text() == LABELS
    report = json.loads((project.logs_dir / "prepare_report.json").read_text())
    assert report["slides_in_annotations"] == 3 and report["slides_on_disk"] == 2 and report["missing"] == 1
    assert report["downloaded"] == 2 and report["md5_verified"] == 2 and report["tiles_total"] is None
    assert (project.logs_dir / "missing_slides.tsv").read_text() == "slide\treason\nS3\tnot found at GDC\n"
    assert "S3: not found at GDC" in (project.logs_dir / "prepare.log").read_text()

    n = len(gdc.requests)
    prepare_project(exp, tmp_path / "proj", download=True, md5=True, extract=False)
    assert [r for r in gdc.requests[n:] if r[1] != "/files"] == []     # S3 is looked up again, nothing else


def test_prepare_calls_extract_tiles_with_config(gdc, tmp_path, monkeypatch):
    calls = []

    def extract_tiles(slides, outdir, tile_px, tile_um, roi_dir=None, workers=None, **kwargs):
        calls.append((sorted(p.name for p in slides), outdir, tile_px, tile_um, roi_dir, workers, kwargs))
        import pandas as pd
        return pd.DataFrame({"slide": [p.stem for p in slides], "tiles_kept": [5] * len(slides)})

    monkeypatch.setitem(sys.modules, "synthhist.wsi.extract", types.SimpleNamespace(extract_tiles=extract_tiles))
    exp = load_experiment(write_config(tmp_path, gdc))
    project = prepare_project(exp, tmp_path / "proj", download=True, workers=3)
    assert calls == [(["S1.svs", "S2.svs"], project.tfrecord_dir, 64, 128, project.roi_dir, 3,
                      {"qc": "both", "grayspace_fraction": 1, "roi_method": "inside", "img_format": "png"})]
    assert json.loads((project.logs_dir / "prepare_report.json").read_text())["tiles_total"] == 10


def test_prepare_without_slides_says_so(gdc, tmp_path):
    exp = load_experiment(write_config(tmp_path, gdc))
    with pytest.raises(UserError, match="no slides of labels.csv in .*--download"):
        prepare_project(exp, tmp_path / "proj")
    missing = (tmp_path / "proj/logs/missing_slides.tsv").read_text().splitlines()
    assert missing == ["slide\treason", "S1\tnot downloaded (use --download)", "S2\tnot downloaded (use --download)",
                       "S3\tnot downloaded (use --download)"]


def test_prepare_rejects_unknown_outcome(gdc, tmp_path):
    exp = load_experiment(write_config(tmp_path, gdc, outcome="grade"))
    with pytest.raises(UserError, match="outcome column 'grade' not in labels.csv"):
        prepare_project(exp, tmp_path / "proj", extract=False)


# ---------------------------------------------------------------- scripts

@pytest.mark.slow
def test_scripts_download_and_extract(gdc, tmp_path, script):
    proj = tmp_path / "proj"
    proc = script("train_gan.py", "--exp", write_config(tmp_path, gdc), "--outdir", proj,
                  "--download", "--md5", "--extract-only", "--workers", "1")
    assert "S3: not found at GDC" in proc.stderr
    tfr = proj / "tfrecords/64px_128um"
    assert sorted(p.name for p in tfr.glob("*.tfrecords")) == ["S1.tfrecords", "S2.tfrecords"]
    manifest = json.loads((tfr / "manifest.json").read_text())
    assert all(v["total"] > 0 for v in manifest.values())
    report = json.loads((proj / "logs/prepare_report.json").read_text())
    assert report["tiles_total"] == sum(v["total"] for v in manifest.values())

    # The classifier config of the same cohort shares the project: nothing is downloaded again.
    n = len(gdc.requests)
    script("train_classifier.py", "--exp", write_config(tmp_path, gdc, "classifier", 32, 96), "--outdir", proj,
           "--extract-only", "--workers", "1")
    assert len(list((proj / "tfrecords/32px_96um").glob("*.tfrecords"))) == 2
    assert gdc.requests[n:] == []

    if importlib.util.find_spec("synthhist.gan.train") is None:
        proc = script("train_gan.py", "--exp", tmp_path / "gan.json", "--outdir", proj, check=False)
        assert proc.returncode == 1 and proc.stderr.strip().endswith("Error: GAN training is not available yet")


@pytest.mark.parametrize("name", ["../../x", "sub/S1", "..", "C:evil", "a\\\\b", "S\x001"])
def test_slide_names_must_be_plain_file_names(gdc, tmp_path, name, script):
    gdc.static["labels.csv"] = f"patient,slide,subtype\nP1,S1,adeno\nP2,{name},squam\n".encode()
    cfg = write_config(tmp_path, gdc)
    with pytest.raises(UserError, match=r"line 3: slide name .* is not a plain file name"):
        prepare_project(load_experiment(cfg), tmp_path / "proj", download=True, extract=False)
    assert not any(tmp_path.glob("**/x*")) and not (tmp_path / "proj/slides/S1.svs").exists()
    if name == "../../x":   # as a user meets it: one line, nothing downloaded
        proc = script("train_gan.py", "--exp", cfg, "--outdir", tmp_path / "p2", "--download", "--extract-only",
                      check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("Error: annotations file")
        assert not [r for r in gdc.requests if "/data/" in r[1]]
