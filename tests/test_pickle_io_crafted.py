"""Crafted network files (pickles built byte by byte, native configs) give one line, never a crash or a bomb.

Files that crashed or exhausted memory before are loaded in a subprocess (with an address-space limit), as a
user would: `python -m synthhist.gan.convert FILE OUT` must exit 1 with a single `Error:` line.
"""

import json
import os
import pickle
import resource
import struct
import subprocess
import sys

import pytest
import torch

from testkit import ROOT
from gan_fixtures import RefPickler, reference_snapshot, write_native, write_reference_pickle
from synthhist.errors import UserError
from synthhist.gan import load_network
from synthhist.gan import pickle_io
from synthhist.gan.checkpoint import network_files
from synthhist.gan.pickle_io import read_network_pickle
from synthhist.refs import parse_hf_ref, resolve

MEMORY_LIMIT = 6 << 30  # a bomb that got past the checks would die here instead of filling the machine


# ------------------------------------------------------------------------------- opcodes, written by hand

def glob(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def text(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def num(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def raw(b: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(b)) + b


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(fn: bytes, *args: bytes) -> bytes:
    return fn + tup(*args) + b"R"


def dct(items: dict) -> bytes:
    return b"}(" + b"".join(text(k) + v for k, v in items.items()) + b"u"


NONE, FALSE, TRUE = b"N", b"\x89", b"\x88"


def dtype(name: str, state: bytes) -> bytes:
    """numpy.dtype(name, False, True) followed by BUILD(state), as numpy pickles a dtype."""
    return call(glob("numpy", "dtype"), text(name), FALSE, TRUE) + state + b"b"


F8 = dtype("f8", tup(num(3), text("<"), NONE, NONE, NONE, num(-1), num(-1), num(0)))


class Raw:
    """Opcodes spliced into an otherwise normal snapshot pickle."""

    def __init__(self, data: bytes):
        self.data = data


class RawPickler(RefPickler):
    dispatch = RefPickler.dispatch.copy()
    dispatch[Raw] = lambda self, obj: self.write(obj.data)


def snapshot_with(tmp_path, name: str = "evil.pkl", **g_ema_attrs):
    """The g16 golden snapshot with G_ema attributes replaced (values may be Raw opcodes)."""
    obj = reference_snapshot("g16_uncond")
    obj["G_ema"].meta["state"].update(g_ema_attrs)
    path = tmp_path / name
    with open(path, "wb") as f:
        RawPickler(f, protocol=4).dump(obj)
    return path


def pickle_file(tmp_path, body: bytes, name: str = "evil.pkl"):
    path = tmp_path / name
    path.write_bytes(b"\x80\x03" + body + b".")
    return path


def persistent(class_name: str, state: bytes) -> bytes:
    return call(glob("torch_utils.persistence", "_reconstruct_persistent_obj"),
                dct({"type": text("class"), "version": num(6), "module_src": text(""),
                     "class_name": text(class_name), "state": state}))


def convert_in_subprocess(path, tmp_path) -> str:
    """Run the converter on path under a memory limit; assert exit 1 and one `Error:` line; return it."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    proc = subprocess.run([sys.executable, "-m", "synthhist.gan.convert", str(path), str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=limit,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    err = proc.stderr.strip()
    assert proc.returncode == 1, (proc.returncode, err[-2000:])  # a crash is -11 (SIGSEGV), a bomb -9 or 137
    assert err.startswith("Error: ") and "\n" not in err and "Traceback" not in err, err[-2000:]
    assert not (tmp_path / "out").exists()
    return err


def load_in_subprocess(ref) -> str:
    """load_network(ref) in a fresh process under a memory limit; assert a UserError; return its message."""
    code = ("import sys\nfrom synthhist.errors import UserError\nfrom synthhist.gan import load_network\n"
            "try:\n    load_network(sys.argv[1], 'cpu')\nexcept UserError as e:\n    print(e)\n    sys.exit(1)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(ref)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"),
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT)))
    assert proc.returncode == 1 and proc.stdout.count("\n") == 1, (proc.returncode, proc.stderr[-2000:])
    return proc.stdout.strip()


def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and len(msg) < 600, msg
    return msg


# ------------------------------------------------------------------------------- 18.1: numpy and torch rebuilds

@pytest.mark.slow
def test_dtype_build_state_cannot_forge_an_object_field(tmp_path):
    obj_dtype = dtype("O8", tup(num(3), text("|"), NONE, NONE, NONE, num(-1), num(-1), num(63)))
    fields = b"}" + text("a") + tup(obj_dtype, num(0)) + b"s"
    forged = dtype("V8", tup(num(3), text("|"), NONE, tup(text("a")), fields, num(8), num(1), num(0)))
    scalar = call(glob("numpy.core.multiarray", "scalar"), forged, raw(struct.pack("<Q", 0x4141414141414141)))
    err = convert_in_subprocess(snapshot_with(tmp_path, z_dim=Raw(scalar)), tmp_path)
    assert "evil.pkl" in err and "numpy dtype 'V8'" in err


def test_dtype_build_state_with_fields_is_refused(tmp_path):
    forged = dtype("f8", tup(num(3), text("|"), NONE, tup(text("a")), b"}", num(8), num(1), num(0)))
    scalar = call(glob("numpy._core.multiarray", "scalar"), forged, raw(bytes(8)))
    with pytest.raises(UserError) as e:
        read_network_pickle(snapshot_with(tmp_path, z_dim=Raw(scalar)))
    assert "fields or metadata: refused" in one_line(e)


def test_build_state_only_on_our_records(tmp_path):
    od = call(glob("collections", "OrderedDict")) + dct({"__class__": NONE}) + b"b"
    with pytest.raises(UserError) as e:
        read_network_pickle(snapshot_with(tmp_path, z_dim=Raw(od)))
    assert "sets the state of a OrderedDict: refused" in one_line(e)


@pytest.mark.slow
def test_ndarray_with_negative_offset_is_refused(tmp_path):
    array = call(glob("numpy", "ndarray"), tup(), F8, raw(bytes(8)), num(-(1 << 20)))
    err = convert_in_subprocess(snapshot_with(tmp_path, z_dim=Raw(array)), tmp_path)
    assert "numpy.ndarray directly: refused" in err


def test_numpy_arrays_and_scalars_from_bytes(tmp_path):
    """Arrays as numpy pickles them (_reconstruct + BUILD) still load; their bytes must match their shape."""
    array = call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(num(0)), raw(b"b"))
    good = array + tup(num(1), tup(num(2)), F8, FALSE, raw(struct.pack("<2d", 1.5, 2.5))) + b"b"
    data = read_network_pickle(snapshot_with(tmp_path, extra=Raw(good)))
    assert data["G_ema"].attr("extra").tolist() == [1.5, 2.5]
    short = array + tup(num(1), tup(num(1000)), F8, FALSE, raw(bytes(16))) + b"b"
    with pytest.raises(UserError) as e:
        read_network_pickle(snapshot_with(tmp_path, extra=Raw(short)))
    assert "does not match its bytes" in one_line(e)


def _storage_payload(numel: int, data: bytes) -> bytes:
    """A legacy torch.save of one FloatStorage whose header claims numel elements."""
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, protocol=2),
             b"\x80\x02(X\x07\x00\x00\x00storage" + b"ctorch\nFloatStorage\n" + b"X\x01\x00\x00\x00k" +
             b"X\x03\x00\x00\x00cpu" + b"J" + struct.pack("<i", numel) + b"NtQ.",
             pickle.dumps(["k"], protocol=2), struct.pack("<q", numel), data]
    return b"".join(parts)


def _tensor(payload: bytes, offset: int, size: tuple, stride: tuple) -> bytes:
    storage = call(glob("torch.storage", "_load_from_bytes"), raw(payload))
    return call(glob("torch._utils", "_rebuild_tensor_v2"), storage, num(offset), tup(*map(num, size)),
                tup(*map(num, stride)), FALSE, call(glob("collections", "OrderedDict")))


@pytest.mark.parametrize("numel,offset,size,stride,message", [
    (4, 0, (4,), (1,), None),  # a well-formed tensor
    (4, 0, (1000000,), (1,), "reaches past its storage"),
    (4, 3, (2, 2), (2, 1), "reaches past its storage"),
    (4, -1, (2,), (1,), "offset is not an integer >= 0"),
    (4, 0, (2,), (-1,), "stride is not an integer >= 0"),
    (1 << 30, 0, (4,), (1,), "storage of 1073741824 elements has 16 bytes"),
])
def test_tensor_views_are_checked_against_their_storage(tmp_path, numel, offset, size, stride, message):
    t = _tensor(_storage_payload(numel, struct.pack("<4f", 1, 2, 3, 4)), offset, size, stride)
    path = snapshot_with(tmp_path, extra=Raw(t))
    if message is None:
        assert torch.equal(read_network_pickle(path)["G_ema"].state["extra"], torch.tensor([1.0, 2, 3, 4]))
        return
    with pytest.raises(UserError) as e:
        read_network_pickle(path)
    assert message in one_line(e)


def test_one_storage_viewed_many_times_is_a_bomb(tmp_path):
    payload = _storage_payload(1 << 16, bytes(4 << 16))
    views = b"(" + call(glob("torch.storage", "_load_from_bytes"), raw(payload)) + b"q\x01" + b"".join(
        call(glob("torch._utils", "_rebuild_tensor_v2"), b"h\x01", num(0), tup(num(1 << 16)), tup(num(1)), FALSE,
             NONE) for _ in range(200)) + b"l"
    with pytest.raises(UserError) as e:
        read_network_pickle(snapshot_with(tmp_path, extra=Raw(views)))
    assert "views its storages more often than the file can hold" in one_line(e)


# ------------------------------------------------------------------------------- 18.7: structure and budgets

@pytest.mark.slow
def test_a_million_nested_tuples_as_a_dict_key(tmp_path):
    deep = NONE + b"\x85" * 1_000_000  # TUPLE1 a million times: hashing it would recurse a million levels
    err = convert_in_subprocess(pickle_file(tmp_path, b"}" + deep + NONE + b"s"), tmp_path)
    assert "as a dict key or set item: refused" in err


def test_a_million_nested_lists(tmp_path):
    deep = b"]" * 1_000_000 + b"a" * 999_999
    with pytest.raises(UserError) as e:
        read_network_pickle(pickle_file(tmp_path, dct({"G_ema": deep})))
    assert "nests objects more than 64 levels deep" in one_line(e)


def test_deep_module_tree(tmp_path):
    rec = persistent("Generator", dct({}))
    for _ in range(3000):
        rec = persistent("SynthesisNetwork", dct({"_modules": dct({"synthesis": rec})}))
    with pytest.raises(UserError) as e:
        load_network(pickle_file(tmp_path, dct({"G_ema": rec})), "cpu")
    assert "levels deep" in one_line(e)


def test_cyclic_module_tree(tmp_path):
    # state dict memoised as 1, its _modules dict as 2, the record as 3; then _modules["synthesis"] = record
    state = b"}q\x01(" + text("_modules") + b"}q\x02" + text("z_dim") + num(4) + b"u"
    rec = call(glob("torch_utils.persistence", "_reconstruct_persistent_obj"),
               dct({"type": text("class"), "version": num(6), "class_name": text("Generator"), "state": state}))
    body = b"}(" + text("G_ema") + rec + b"q\x03" + b"h\x02" + text("synthesis") + b"h\x03" + b"s0" + b"u"
    with pytest.raises(UserError) as e:
        load_network(pickle_file(tmp_path, body), "cpu")
    assert "cycle" in one_line(e)


def test_set_amplification_is_bounded(tmp_path):
    items = b"(" + b"".join(num(i) for i in range(20000)) + b"lq\x01"
    sets = b"(" + items + b"".join(call(glob("builtins", "set"), b"h\x01") for _ in range(2000)) + b"l"
    with pytest.raises(UserError) as e:
        read_network_pickle(pickle_file(tmp_path, dct({"G_ema": sets})))
    assert "builds more data than the file holds" in one_line(e)


def test_opcode_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(pickle_io, "MAX_OPS", 1000)
    with pytest.raises(UserError) as e:
        read_network_pickle(pickle_file(tmp_path, b"(" + NONE * 2000 + b"l"))
    assert "more than 1000 operations" in one_line(e)


@pytest.mark.parametrize("opcodes,message", [
    (b"(" + glob("collections", "OrderedDict") + b"o", "uses OBJ"),
    (glob("builtins", "dict") + tup(), "builtins.dict"),
    (glob("collections", "OrderedDict") + tup(num(1)) + b"\x81", "other than a dict with NEWOBJ"),
    (b"\x96" + struct.pack("<Q", 1 << 40), "out-of-band buffers"),
    (b"B" + struct.pack("<I", 0xFFFFFFF0), "not a readable network pickle"),
])
def test_other_opcodes_are_refused(tmp_path, opcodes, message):
    with pytest.raises(UserError) as e:
        read_network_pickle(pickle_file(tmp_path, dct({"G_ema": opcodes})))
    assert message in one_line(e)


@pytest.mark.parametrize("attr,value", [("c_dim", "two"), ("z_dim", None), ("img_resolution", [16]),
                                        ("_modules", "nothing")])
def test_malformed_attributes_are_one_line(tmp_path, attr, value):
    with pytest.raises(UserError) as e:
        load_network(snapshot_with(tmp_path, **{attr: value}), "cpu")
    assert "evil.pkl" in one_line(e)


# ------------------------------------------------------------------------------- 18.3: sizes bounded by the weights

@pytest.mark.slow
def test_pickle_dims_beyond_the_weights_allocate_nothing(tmp_path):
    err = convert_in_subprocess(snapshot_with(tmp_path, z_dim=60_000_000), tmp_path)
    assert "z_dim=60000000 is not a sane number" in err
    err = convert_in_subprocess(snapshot_with(tmp_path, "b.pkl", z_dim=500_000), tmp_path)
    assert "the G_ema weights do not match its configuration" in err


def _edit_config(folder, changes: dict):
    """Change network.json: keys 'G.<name>' change G_kwargs, others the config itself."""
    config = folder / "network.json"
    cfg = json.loads(config.read_text())
    for key, value in changes.items():
        if key.startswith("G."):
            cfg["G_kwargs"][key[2:]] = value
        else:
            cfg[key] = value
    config.write_text(json.dumps(cfg))
    return config


@pytest.mark.slow
def test_native_dims_beyond_the_weights_allocate_nothing(tmp_path):
    write_native("g16_uncond", tmp_path / "m")
    _edit_config(tmp_path / "m", {"G.z_dim": 60_000_000})
    assert "z_dim=60000000 is not a sane number" in load_in_subprocess(tmp_path / "m")
    _edit_config(tmp_path / "m", {"G.z_dim": 16, "G.channel_base": 1 << 20, "G.channel_max": 16384})  # 10 GB a conv
    assert "weights do not match its configuration" in load_in_subprocess(tmp_path / "m")


@pytest.mark.parametrize("changes,message", [
    ({"G_kwargs": None}, "has no G_kwargs"),
    ({"G_kwargs": [1, 2]}, "has no G_kwargs"),
    ({"G.img_resolution": 12}, "img_resolution 12 is not a power of two"),
    ({"G.mapping_kwargs": {"num_layers": 100000}}, "num_layers 100000 is not in 0..64"),
    ({"G.conv_clamp": float("nan")}, "conv_clamp=nan is not a sane number"),
    ({"G.bogus": 1}, "unsupported G_ema configuration"),
    ({"weights": "../outside.safetensors"}, "weights must name a .safetensors file beside it"),
    ({"networks": "G_ema"}, "networks must be a list"),
    ({"format_version": "1"}, "no valid format_version"),
    ({"tile_um": float("nan")}, "tile_um nan is not a valid number"),
    ({"tile_px": -5}, "tile_px -5 is not a valid number"),
])
def test_malformed_native_configs_are_one_line(tmp_path, changes, message):
    write_native("g16_uncond", tmp_path / "m")
    _edit_config(tmp_path / "m", changes)
    with pytest.raises(UserError) as e:
        load_network(tmp_path / "m", "cpu")
    assert message in one_line(e) and "network.json" in one_line(e)


@pytest.mark.parametrize("content,message", [("[" * 100000 + "]" * 100000, "corrupt"),
                                             ('{"x": "' + "a" * (2 << 20) + '"}', "larger than 1 MiB")])
def test_deep_or_huge_native_json(tmp_path, content, message):
    write_native("g16_uncond", tmp_path / "m")
    (tmp_path / "m" / "network.json").write_text(content)
    with pytest.raises(UserError) as e:
        load_network(tmp_path / "m", "cpu")
    assert message in one_line(e)


def test_malformed_training_options_are_one_line(tmp_path):
    path = write_reference_pickle("g16_uncond", tmp_path / "n.pkl",
                                  training_options={"slideflow_kwargs": {"tile_px": "big", "tile_um": 1}})
    with pytest.raises(UserError) as e:
        load_network(path, "cpu")
    assert "tile_px big is not a valid number" in one_line(e)


# ------------------------------------------------------------------------------- 18.11: real paths, hf confinement

def test_network_files_are_real_paths(tmp_path):
    write_native("g16_uncond", tmp_path / "outside")
    allowed = tmp_path / "allowed" / "m"
    allowed.mkdir(parents=True)
    (allowed / "network.json").write_text((tmp_path / "outside" / "network.json").read_text())
    (allowed / "network.safetensors").symlink_to(tmp_path / "outside" / "network.safetensors")
    files = network_files(allowed)
    assert files == [(allowed / "network.json").resolve(), (tmp_path / "outside" / "network.safetensors").resolve()]
    assert not all(f.is_relative_to(tmp_path / "allowed") for f in files)  # what a caller confining them sees
    assert load_network(allowed, "cpu").G.img_resolution == 16
    pkl = write_reference_pickle("g16_uncond", tmp_path / "outside" / "n.pkl", training_options={})
    (allowed / "n.pkl").symlink_to(pkl)
    assert network_files(allowed / "n.pkl") == [pkl.resolve()]
    assert network_files(pkl) == [pkl.resolve(), (pkl.parent / "training_options.json").resolve()]


@pytest.mark.parametrize("ref,message", [("hf:lab/repo/../other", "may not contain '..'"),
                                         ("hf:lab/repo/a/../../x.pkl", "may not contain '..'"),
                                         ("hf:lab/repo/./x", "may not contain '..', '.'"),
                                         ("hf:../repo", "malformed Hugging Face reference"),
                                         ("hf:lab/repo/x.pkl@../../refs", "malformed revision")])
@pytest.mark.parametrize("kind", ["network", "classifier"])
def test_hf_paths_cannot_leave_the_repository(ref, kind, message):
    with pytest.raises(UserError) as e:  # refused before anything is looked up or downloaded
        resolve(ref, kind)
    assert message in one_line(e)


def test_hf_revision_in_both_places():
    assert parse_hf_ref("hf:lab/repo/run/net.pkl@v1.0") == ("lab/repo", "v1.0", "run/net.pkl")
    assert parse_hf_ref("hf:lab/repo@v1.0/run/net.pkl") == ("lab/repo", "v1.0", "run/net.pkl")
    assert parse_hf_ref("hf:lab/repo/@refs/pr/1") == ("lab/repo", "refs/pr/1", None)
    assert parse_hf_ref("hf:lab/repo/") == ("lab/repo", None, None)
    with pytest.raises(UserError, match="malformed"):
        parse_hf_ref("hf:lab/repo@v1/x@v2")


def test_collections_ordered_dict_items_are_flat(tmp_path):
    od = call(glob("collections", "OrderedDict"), b"(" + tup(tup(tup(NONE)), NONE) + b"l")
    with pytest.raises(UserError) as e:
        read_network_pickle(snapshot_with(tmp_path, z_dim=Raw(od)))
    assert "as a dict key or set item" in one_line(e)
