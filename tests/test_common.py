import numpy as np
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
