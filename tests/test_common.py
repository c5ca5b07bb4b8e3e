import pytest
import torch

from synthhist.errors import UserError
from synthhist.fileio import atomic_open, next_run_dir
from synthhist.images import centre_crop_resize, crop_width, to_uint8
from synthhist.seeds import parse_seeds


def test_parse_seeds_forms(tmp_path):
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds("1,4-6") == [1, 4, 5, 6]
    f = tmp_path / "seeds.txt"
    f.write_text("7\n3\n\n11\n")
    assert parse_seeds(str(f)) == [7, 3, 11]


@pytest.mark.parametrize("bad", ["", "a", "1-", "5-2", "1,,x", str(2**32)])
def test_parse_seeds_rejects(bad):
    with pytest.raises(UserError):
        parse_seeds(bad)


def test_uint8_conversion_rounds_half_up():
    x = torch.tensor([-1.0, -0.5, 0.0, 1.0, 2.0, -3.0]).reshape(1, 1, 1, 6).expand(1, 3, 1, 6)
    u = to_uint8(x)[0, 0, :, 0].tolist()
    assert u == [0, 64, 128, 255, 255, 0]


def test_centre_crop_resize_geometry():
    assert crop_width(512, 400, 302) == 386
    img = torch.zeros(2, 512, 512, 3, dtype=torch.uint8)
    img[:, 256, 256] = 255
    out = centre_crop_resize(img, 512, 400, 299, 302)
    assert out.shape == (2, 299, 299, 3) and out.dtype == torch.uint8
    with pytest.raises(UserError):
        crop_width(512, 0, 302)
    with pytest.raises(UserError):
        crop_width(512, 302, 400)


def test_atomic_open_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_open(target) as f:
        f.write(b"ok")
    assert target.read_bytes() == b"ok"


def test_next_run_dir(tmp_path):
    assert next_run_dir(tmp_path, "x").name == "00000-x"
    (tmp_path / "00004-y").mkdir()
    assert next_run_dir(tmp_path, "x").name == "00005-x"


def test_seed_lists_are_bounded_before_they_are_built(tmp_path):
    from synthhist.seeds import MAX_SEEDS

    with pytest.raises(UserError, match="300000001 seeds is more than the limit"):
        parse_seeds("0-300000000")
    assert len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS
    f = tmp_path / "seeds.bin"
    f.write_bytes(bytes(range(256)))
    with pytest.raises(UserError, match="is not a text file"):
        parse_seeds(str(f))


def test_progress_bar_on_a_terminal_and_log_lines_otherwise(capsys, caplog):
    from synthhist.progress import Progress

    with caplog.at_level("INFO", logger="synthhist"):
        with Progress(total=3, desc="work", unit="seed", terminal=False, every_s=0) as bar:
            for _ in range(3):
                bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("work: 1/3 seeds in") and lines[-1].startswith("work: 3/3 seeds in") and len(lines) == 4
    caplog.clear()
    with caplog.at_level("INFO", logger="synthhist"):
        assert list(Progress(range(4), desc="bar", terminal=True)) == [0, 1, 2, 3]
    assert not caplog.records and "bar: 100%" in capsys.readouterr().err


def test_bool_option_and_both_spellings():
    import click
    from click.testing import CliRunner

    from synthhist.cli import bool_option, command

    @command()
    @bool_option("--video", help="")
    @click.option("--noise-mode", default="const")
    @click.option("--outcome_idx", type=int, default=None)
    def main(video, noise_mode, outcome_idx):
        click.echo(f"{video} {noise_mode} {outcome_idx}")

    runner = CliRunner()
    for args, want in ((["--video"], "True"), (["--video=True"], "True"), (["--video", "True"], "True"),
                       (["--video=False"], "False"), (["--video", "false"], "False"), ([], "False")):
        assert runner.invoke(main, args).output.split()[0] == want, args
    assert runner.invoke(main, ["--noise_mode", "random", "--outcome-idx", "1"]).output.strip() == "False random 1"
    assert runner.invoke(main, ["--video", "--noise-mode=none", "--outcome_idx=0"]).output.strip() == "True none 0"


def test_usage_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    from testkit import ROOT

    for script, args in (("interpolate.py", ["--seeds", "0", "--outdir", str(tmp_path), "--vidoe"]),
                         ("concordance.py", [])):
        proc = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
        assert f"(see {script} --help)" in lines[0]


def test_atomic_path_permissions_and_stale_temps(tmp_path):
    import os
    import time

    from synthhist.fileio import atomic_path, remove_stale_temps

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.mp4") as tmp:
            assert tmp.suffix == ".mp4" and tmp.name.startswith(".a.mp4.")
            tmp.write_bytes(b"x")
        with atomic_open(tmp_path / "b.png") as f:
            f.write(b"y")
    finally:
        os.umask(umask)
    assert {(p.name, p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {("a.mp4", 0o644), ("b.png", 0o644)}
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "c.mp4") as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.png"]
    (tmp_path / ".d.png.x1.tmp").write_bytes(b"")
    (tmp_path / ".e.mp4.x2.tmp.mp4").write_bytes(b"")
    old = time.time() - 3600
    for p in tmp_path.glob(".*"):
        os.utime(p, (old, old))
    assert remove_stale_temps(tmp_path) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.png"]


def test_one_tile_conversion():
    from synthhist.images import TileCrop, tile_crop

    c = tile_crop(512, meta_px=512, meta_um=400.0, target_px=299, target_um=302)
    assert c == TileCrop(512, 400.0, 299, 302.0)
    assert tile_crop(32, meta_px=None, meta_um=None, gan_um=64, target_px=16).target_um == 64.0  # resize only
    img = torch.zeros(1, 512, 512, 3, dtype=torch.uint8)
    assert torch.equal(c(img), centre_crop_resize(img, 512, 400, 299, 302))
    for kwargs, msg in ((dict(meta_um=None), "pass --gan-um"), (dict(target_px=0), "--target-px must be between"),
                        (dict(target_um=float("nan")), "--target-um must be a positive"),
                        (dict(gan_um=float("inf")), "--gan-um must be a positive"),
                        (dict(gan_px=256), "does not match the generator's output size")):
        with pytest.raises(UserError, match=msg):
            tile_crop(512, **{"meta_px": 512, "meta_um": 400.0, "target_px": 299, **kwargs})
