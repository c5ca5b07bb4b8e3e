"""GDC lookup and slide download against a fake GDC server: resume, retries, MD5 + quarantine, missing list."""

import hashlib

import pytest

from fake_gdc import FakeGdc
from slide_fixtures import tissue_slide
from synthhist.errors import UserError
from synthhist.wsi.download import DownloadError, download, part_path
from synthhist.wsi.gdc import fetch_slides, gdc_url, lookup_files, read_manifest


def slide_bytes(tmp_path, seed):
    return tissue_slide(tmp_path / f"src/{seed}.svs", 512, 512, seed=seed).read_bytes()


@pytest.fixture
def gdc():
    with FakeGdc() as server:
        yield server


def _fetch(tmp_path, gdc, names, **kwargs):
    return fetch_slides(names, tmp_path / "slides", tmp_path / "quarantine", tmp_path / "gdc_manifest.tsv",
                        tmp_path / "md5_verified.json", base_url=gdc.url, **kwargs)


def test_gdc_url_env(monkeypatch):
    monkeypatch.delenv("SYNTHHIST_GDC_URL", raising=False)
    assert gdc_url() == "https://api.gdc.cancer.gov"
    monkeypatch.setenv("SYNTHHIST_GDC_URL", "http://127.0.0.1:9/")
    assert gdc_url() == "http://127.0.0.1:9"


def test_lookup_batches_and_unknown_names(gdc):
    files = [gdc.add(f"S{i}.svs", bytes([i]) * 10) for i in range(5)]
    found = lookup_files([f.name for f in files] + ["nope.svs"], gdc.url, batch=2)
    assert sorted(found) == [f"S{i}.svs" for i in range(5)]
    assert found["S3.svs"].file_id == files[3].file_id and found["S3.svs"].file_size == 10
    assert found["S3.svs"].md5sum == hashlib.md5(bytes([3]) * 10).hexdigest()
    assert sum(m == "POST" and p == "/files" for m, p, _ in gdc.requests) == 3


def test_lookup_failure_is_one_line():
    with pytest.raises(UserError, match="GDC file lookup failed"):
        lookup_files(["a.svs"], "http://127.0.0.1:9")


def test_download_resumes_part_file_with_range(gdc, tmp_path):
    data = bytes(range(256)) * 1000
    f = gdc.add("big.svs", data)
    dest = tmp_path / "big.svs"
    part_path(dest).write_bytes(data[:100_000])
    download(f"{gdc.url}/data/{f.file_id}", dest, size=len(data))
    assert dest.read_bytes() == data and not part_path(dest).exists()
    assert gdc.data_requests(f) == ["bytes=100000-"]


def test_download_restarts_when_server_ignores_range(gdc, tmp_path):
    data = b"x" * 5000 + b"y" * 5000
    f = gdc.add("a.svs", data)
    gdc.ignore_range = True
    dest = tmp_path / "a.svs"
    part_path(dest).write_bytes(b"garbage")
    download(f"{gdc.url}/data/{f.file_id}", dest, size=len(data))
    assert dest.read_bytes() == data


def test_download_gives_up_after_retries(gdc, tmp_path):
    f = gdc.add("a.svs", b"abc", errors=10)
    with pytest.raises(DownloadError, match="after 3 attempts"):
        download(f"{gdc.url}/data/{f.file_id}", tmp_path / "a.svs", size=3, retries=2, backoff=0)
    assert len(gdc.data_requests(f)) == 3 and not (tmp_path / "a.svs").exists()


def test_fetch_slides_drop_md5_missing(gdc, tmp_path):
    a = gdc.add("A.svs", bytes(range(256)) * 1200, drops=1)         # connection cut half-way once
    b = gdc.add("B.svs", slide_bytes(tmp_path, 2), md5="0" * 32)          # GDC's MD5 never matches
    d = gdc.add("D.svs", slide_bytes(tmp_path, 3))
    report = _fetch(tmp_path, gdc, ["A", "B", "C", "D"], download_missing=True, md5=True, workers=2)

    assert (tmp_path / "slides/A.svs").read_bytes() == a.data
    ranges = gdc.data_requests(a)
    assert len(ranges) == 2 and ranges[0] is None                    # resumed where the cut left it:
    assert 0 < int(ranges[1][6:-1]) <= len(a.data) // 2
    assert (tmp_path / "slides/D.svs").read_bytes() == d.data
    assert len(gdc.data_requests(b)) == 2                            # retried once ...
    assert (tmp_path / "quarantine/B.svs").read_bytes() == b.data    # ... then quarantined
    assert not (tmp_path / "slides/B.svs").exists()
    assert report.not_found == ["C"]
    assert sorted(report.downloaded) == ["A", "D"] and sorted(report.verified) == ["A", "D"]
    assert report.present == ["A", "D"]
    missing = report.missing()
    assert list(missing) == ["B", "C"] and "MD5" in missing["B"] and missing["C"] == "not found at GDC"
    assert set(read_manifest(tmp_path / "gdc_manifest.tsv")) == {"A.svs", "B.svs", "D.svs"}
    assert not list((tmp_path / "slides").glob("*.part"))

    # A rerun looks up only what it lacks, downloads nothing and trusts the cached MD5 verification.
    n = len(gdc.requests)
    again = _fetch(tmp_path, gdc, ["A", "D"], download_missing=True, md5=True)
    assert again.downloaded == [] and sorted(again.verified) == ["A", "D"] and len(gdc.requests) == n


def test_md5_mismatch_of_local_slide_without_download_is_quarantined(gdc, tmp_path):
    gdc.add("A.svs", b"the real slide")
    (tmp_path / "slides").mkdir()
    (tmp_path / "slides/A.svs").write_bytes(b"a damaged slide")
    report = _fetch(tmp_path, gdc, ["A"], md5=True)
    assert list(report.quarantined) == ["A"] and (tmp_path / "quarantine/A.svs").exists()
    assert not any(p.startswith("/data/") for _, p, _ in gdc.requests)


def test_local_slide_unknown_to_gdc_is_unverified_not_missing(gdc, tmp_path):
    (tmp_path / "slides").mkdir()
    (tmp_path / "slides/X.svs").write_bytes(b"mine")
    report = _fetch(tmp_path, gdc, ["X"], download_missing=True, md5=True)
    assert report.unverified == ["X"] and report.present == ["X"] and report.missing() == {}


def test_no_network_without_download_or_md5(tmp_path):
    (tmp_path / "slides").mkdir()
    (tmp_path / "slides/A.svs").write_bytes(b"x")
    report = fetch_slides(["A", "B"], tmp_path / "slides", tmp_path / "q", tmp_path / "m.tsv", tmp_path / "c.json",
                          base_url="http://127.0.0.1:9")
    assert report.present == ["A"] and report.absent == ["B"]
    assert report.missing() == {"B": "not downloaded (use --download)"}


def test_failed_download_is_listed(gdc, tmp_path):
    gdc.add("A.svs", b"abc", gone=True)
    gdc.add("B.svs", b"abc", errors=100)
    report = _fetch(tmp_path, gdc, ["A", "B"], download_missing=True, retries=1, backoff=0)
    assert report.failed["A"] == "not found at the data endpoint"
    assert "after 2 attempts" in report.failed["B"] and report.present == []
    assert list(report.missing()) == ["A", "B"]


def test_fetch_slides_refuses_names_outside_the_slides_folder(gdc, tmp_path):
    with pytest.raises(UserError, match="'../x' is not a plain file name"):
        _fetch(tmp_path, gdc, ["S1", "../x"], download_missing=True)
    assert not (tmp_path / "x.svs").exists() and not gdc.requests
