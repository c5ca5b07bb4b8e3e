"""One resolver for model references: demo, paths and hf:owner/repo[/path][@rev], for networks and classifiers."""

import os
import subprocess
import sys

import pytest

from testkit import ROOT
from fake_hf import FakeHub, each_in_subprocess, repo_from_folder
from gan_fixtures import write_native
from synthhist.errors import UserError
from synthhist.refs import demo_path, or_demo, resolve


def test_demo_and_paths(tmp_path, capsys):
    assert resolve("demo", "network") == demo_path("network") and demo_path("network").is_file()
    assert (resolve("demo", "classifier") / "params.json").is_file()
    assert resolve(tmp_path, "classifier") == tmp_path
    with pytest.raises(UserError, match="network not found: .*nothere.pkl"):
        resolve(tmp_path / "nothere.pkl", "network")
    assert or_demo("x", "network") == "x" and capsys.readouterr().err == ""
    assert or_demo(None, "classifier") == "demo"
    assert "Using the bundled demo classifier (--classifier demo)" in capsys.readouterr().err


def test_gan_and_classifier_do_not_import_demo():
    code = ("import sys\nimport synthhist.gan.checkpoint, synthhist.refs\n"
            "assert not any(m.startswith('synthhist.demo') for m in sys.modules), sorted(sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
    for path in ("synthhist/gan/checkpoint.py", "synthhist/classifier/load.py"):
        assert "synthhist.demo" not in (ROOT / path).read_text()


def _resolve_in_subprocess(refs, env):
    """{'<kind> <ref>': local path or 'ERR msg'} resolved in one fresh process."""
    return each_in_subprocess(refs, "resolve(*reversed(ref.split(' ', 1)))", env, "from synthhist.refs import resolve")


@pytest.mark.slow
def test_hf_classifier_folders_and_revisions_against_local_fake_hub(tmp_path):
    write_native("g16_uncond", tmp_path / "native")
    clf = tmp_path / "clf" / "models" / "00001-m"
    clf.mkdir(parents=True)
    (clf / "params.json").write_text('{"tile_px": 32}')
    repos = {"lab/clf": repo_from_folder(tmp_path / "clf"), "lab/native": repo_from_folder(tmp_path / "native")}
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1")
    refs = ["classifier hf:lab/clf/models/00001-m@main", "classifier hf:lab/clf@main/models/00001-m",
            "classifier hf:lab/clf/models/none", "network hf:lab/native/network.json@main"]
    with FakeHub(repos) as hub:
        env["HF_ENDPOINT"] = hub.url
        got = _resolve_in_subprocess(refs, env)
    for ref in refs[:2]:
        assert got[ref].endswith("models/00001-m") and os.path.isfile(os.path.join(got[ref], "params.json")), got
    assert got[refs[2]].startswith("ERR hf:lab/clf: no models/none in the repository")
    assert got[refs[3]].endswith("network.json")
    # offline: the same one line for both kinds, naming the download command (with the revision) and the cache
    env["HF_HUB_OFFLINE"] = "1"
    got = _resolve_in_subprocess([refs[0], "classifier hf:lab/uncached@v2", "network hf:lab/uncached@v2"], env)
    assert got.pop(refs[0]).endswith("models/00001-m")  # cached: still found
    for line in got.values():
        assert "hf download lab/uncached --revision v2" in line and str(tmp_path / "hf") in line, got
