"""generate.py as a user runs it: golden pixels, formats, projections, resizing and bad input."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from gan_fixtures import expected_uint8, golden, golden_generator, write_native, write_reference_pickle
from synthhist.images import centre_crop_resize, to_uint8


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("nets")
    return {"cond": write_native("g32_cond2", root / "cond", tile_px=32, tile_um=400),
            "uncond": write_reference_pickle("g16_uncond", root / "uncond" / "network-snapshot-000000.pkl")}


def test_conditional_network_gives_golden_pixels(nets, tmp_path, script):
    expected = expected_uint8("g32_cond2")  # seeds 0..3 with classes 0, 1, 0, 1
    for cls, seeds in ((0, [0, 2]), (1, [1, 3])):
        script("generate.py", "--network", nets["cond"], "--seeds", ",".join(map(str, seeds)), "--class", cls,
               "--outdir", tmp_path, "--batch", 1 if cls else 4, "--save-projection")
        for s in seeds:
            assert np.array_equal(_png(tmp_path / f"seed{s:04d}.png"), expected[s])
    arrays, _ = golden("g32_cond2")
    for s in range(4):
        ws = np.load(tmp_path / f"seed{s:04d}.npy")
        assert ws.shape == (8, 32) and np.abs(ws - arrays["out/ws_psi1.0_cutNone"][s]).max() < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"seed{s:04d}.{e}" for s in range(4) for e in ("npy", "png")]


def test_unconditional_pickle_truncation_and_jpg(nets, tmp_path, script):
    script("generate.py", "--network", nets["uncond"], "--seeds", "5-6", "--trunc", "0.6", "--outdir", tmp_path / "png")
    expected = expected_uint8("g16_uncond", psi=0.6)
    for i, s in enumerate((5, 6)):
        assert np.array_equal(_png(tmp_path / "png" / f"seed{s:04d}.png"), expected[i])
    script("generate.py", "--network", nets["uncond"], "--seeds", "5", "--format", "jpg", "--outdir", tmp_path / "jpg")
    jpg = tmp_path / "jpg" / "seed0005.jpg"
    assert Image.open(jpg).format == "JPEG"
    ref = io.BytesIO()  # the reference saves through PIL with quality=100 (default chroma subsampling)
    Image.fromarray(expected_uint8("g16_uncond")[0]).save(ref, format="JPEG", quality=100)
    assert np.array_equal(_png(jpg), _png(ref))


def test_resize_crops_the_centre_then_resizes(nets, tmp_path, script):
    script("generate.py", "--network", nets["cond"], "--seeds", "1", "--class", "1", "--target-px", "20",
           "--target-um", "300", "--outdir", tmp_path)
    G = golden_generator("g32_cond2")
    arrays, _ = golden("g32_cond2")
    with torch.no_grad():
        img = to_uint8(G(torch.from_numpy(arrays["in/z"][1:2]), torch.tensor([[0.0, 1.0]])))
    want = centre_crop_resize(img, 32, 400, 20, 300)[0].numpy()  # crop 24 px of 32, resize to 20
    got = _png(tmp_path / "seed0001.png")
    assert got.shape == (20, 20, 3) and np.abs(got.astype(int) - want).max() <= 1


def test_resize_needs_tile_size_when_metadata_missing(nets, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["--network", str(nets["uncond"]), "--seeds", "5", "--target-px", "8", "--outdir", str(out)]
    code, err = _run_cli_in_process(args, capsys)
    assert code == 1 and "--gan-um" in err and not out.exists()
    assert _run_cli_in_process(args + ["--gan-um", "100"], capsys)[0] == 0
    assert _png(out / "seed0005.png").shape == (8, 8, 3)


BAD = {  # name: (extra args, words expected in the one-line error)
    "missing network": (["--network", "{tmp}/nope.pkl", "--seeds", "1"], "not found"),
    "corrupt network": (["--network", "{tmp}/corrupt.pkl", "--seeds", "1"], "corrupt.pkl"),
    "unknown class in pickle": (["--network", "{tmp}/unknown.pkl", "--seeds", "1"], "unknown network class"),
    "code in pickle": (["--network", "{tmp}/evil.pkl", "--seeds", "1"], "refused"),
    "class out of range": (["--network", "{cond}", "--seeds", "1", "--class", "2"], "out of range"),
    "class missing": (["--network", "{cond}", "--seeds", "1"], "--class"),
    "class for unconditional": (["--network", "{uncond}", "--seeds", "1", "--class", "0"], "unconditional"),
    "malformed seeds": (["--network", "{cond}", "--seeds", "1,x", "--class", "0"], "malformed seed"),
    "unwritable outdir": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--outdir", "{tmp}/file.txt/sub"],
                          "cannot write"),
    "target larger than tile": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--target-px", "8",
                                 "--target-um", "800"], "larger than the GAN tile"),
    "resize without target": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--resize"], "--target-px"),
    "hf offline": (["--network", "hf:nobody/nothing", "--seeds", "1"], "hf download nobody/nothing"),
    "unknown class name": (["--network", "{cond}", "--seeds", "1", "--class", "gland"],
                           "'gland' is not a class of the network: its classes are 0 classA, 1 classB"),
    "target px 0": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--target-px", "0"], "--target-px must be"),
    "target px -5": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--target-px", "-5"], "--target-px must be"),
    "target px huge": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--target-px", "100000"],
                       "--target-px must be between 1 and 4096"),
    "target um nan": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--target-px", "8", "--target-um", "nan"],
                      "--target-um must be a positive number"),
    "gan um inf": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--target-px", "8", "--gan-um", "inf"],
                   "--gan-um must be a positive number"),
    "trunc nan": (["--network", "{cond}", "--seeds", "1", "--class", "0", "--trunc", "nan"], "--trunc must be a finite"),
    "huge seed range": (["--network", "{cond}", "--seeds", "0-300000000", "--class", "0"],
                        "300000001 seeds is more than the limit of 1000000"),
    "binary seed file": (["--network", "{cond}", "--seeds", "{tmp}/seeds.bin", "--class", "0"], "is not a text file"),
    "usage error": (["--network", "{cond}", "--seeds", "1", "--clas", "0"], "No such option '--clas'. Did you mean '--class'?"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    import os
    import pickle

    from gan_fixtures import reference_snapshot

    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "corrupt.pkl").write_bytes(b"\x80\x04\x95garbage")
    (tmp / "file.txt").write_text("x")
    (tmp / "seeds.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    snap = reference_snapshot("g16_uncond")
    snap["G_ema"].meta["class_name"] = "StyleGAN3Generator"
    write_reference_pickle("g16_uncond", tmp / "unknown.pkl", obj=snap)
    (tmp / "evil.pkl").write_bytes(pickle.dumps(_Evil(str(tmp / "pwned"))))
    assert os.path.exists(tmp / "evil.pkl")
    return tmp


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


SUBPROCESS_CASES = ("missing network", "code in pickle", "hf offline")  # the rest run the same CLI in-process


def _run_cli_in_process(args, capsys) -> tuple[int, str]:
    """Run generate.py's click command through synthhist.cli.run in this process: (exit code, stderr)."""
    import importlib.util
    import sys

    from testkit import ROOT
    from synthhist.cli import run

    spec = importlib.util.spec_from_file_location("generate_script", ROOT / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv, sys.argv = sys.argv, ["generate.py", *args]
    try:
        with pytest.raises(SystemExit) as e:
            run(module.main)
    finally:
        sys.argv = argv
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(nets, bad_files, tmp_path, script, capsys, case):
    args, words = BAD[case]
    fill = dict(tmp=bad_files, cond=nets["cond"], uncond=nets["uncond"])
    args = [a.format(**fill) for a in args]
    if "--outdir" not in args:
        args += ["--outdir", str(tmp_path / "out")]
    if case in SUBPROCESS_CASES:
        proc = script("generate.py", *args, check=False)
        code, stderr = proc.returncode, proc.stderr
    else:
        code, stderr = _run_cli_in_process(args, capsys)
    assert code != 0
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (bad_files / "pwned").exists()


def test_class_by_name_and_both_option_spellings(nets, tmp_path, capsys):
    by_index, by_name = tmp_path / "i", tmp_path / "n"
    assert _run_cli_in_process(["--network", str(nets["cond"]), "--seeds", "3", "--class", "1", "--outdir",
                                str(by_index)], capsys)[0] == 0
    assert _run_cli_in_process(["--network", str(nets["cond"]), "--seeds", "3", "--class", "CLASSb", "--noise_mode",
                                "const", "--outdir", str(by_name)], capsys)[0] == 0
    assert np.array_equal(_png(by_index / "seed0003.png"), _png(by_name / "seed0003.png"))


def test_stale_temps_are_removed_and_outputs_readable_by_all(nets, tmp_path, capsys):
    import os
    import time

    out = tmp_path / "o"
    out.mkdir()
    stale, fresh = out / ".seed0001.png.abc123.tmp", out / ".seed0002.png.def456.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    umask = os.umask(0o022)
    try:
        assert _run_cli_in_process(["--network", str(nets["cond"]), "--seeds", "1", "--class", "0", "--outdir",
                                    str(out)], capsys)[0] == 0
    finally:
        os.umask(umask)
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a run still going
    assert (out / "seed0001.png").stat().st_mode & 0o777 == 0o644
