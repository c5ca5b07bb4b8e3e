"""Read StyleGAN2-ADA / StyleGAN3 / slideflow network pickles without executing anything in them.

The reference code pickles every network module through `torch_utils.persistence`: each object becomes a
call `_reconstruct_persistent_obj(meta)` where meta holds the module source, the class name and the
object's `__dict__` (docs/stylegan2.md §3.2). This unpickler never imports or runs that source: the
reconstruct call returns a `PersistentRecord`, and only a short allow-list of globals is resolved, each to
a function of ours that rebuilds plain data from bytes (docs/stylegan2.md §3.3):

- storages: the legacy `torch.save` payload of `torch.storage._load_from_bytes` is parsed here (no
  torch.load), its element count checked against the bytes present;
- tensors: every size/stride/offset is checked against the storage before a view is taken;
- numpy scalars and arrays: plain bytes plus a dtype picked by name from a fixed table (`_Dtype`), never a
  numpy constructor called with pickle-supplied arguments; BUILD state is applied only to our own records;
- EasyDict -> dict, OrderedDict, set, frozenset, protocol-2 bytes (`_codecs.encode`).

A crafted file cannot crash, hang or exhaust memory: opcodes are counted, everything built is charged to a
budget set by the file size, dict keys and set items must be flat values (no deep hashing), and the result
is walked once, without recursion, refusing cycles and nesting deeper than MAX_DEPTH.
"""

from __future__ import annotations

import collections
import hashlib
import io
import math
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synthhist.errors import UserError

PERSISTENCE_VERSION = 6  # `_version` of torch_utils/persistence.py in ADA, NV3 and the slideflow fork
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization MAGIC_NUMBER of the legacy (non-zip) format
LEGACY_PROTOCOL = 1001
MAX_OPS = 5_000_000  # pickle opcodes; a 1024-px snapshot (G, D, G_ema) needs a few hundred thousand
MAX_DEPTH = 64  # container nesting; a snapshot needs about 25
MAX_NDIM = 16
SLACK = 1 << 20  # bytes allowed beyond the file size for small objects the pickle builds

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}
_NUMPY_CODES = {  # numpy.dtype name in a pickle -> the dtype we build (byte order added from the BUILD state)
    "b1": "?", "i1": "i1", "u1": "u1", "i2": "i2", "u2": "u2", "i4": "i4", "u4": "u4", "i8": "i8", "u8": "u8",
    "f2": "f2", "f4": "f4", "f8": "f8", "c8": "c8", "c16": "c16",
}
_ATOMS = (str, bytes, int, float, bool, type(None))


@dataclass
class PersistentRecord:
    """One persistent network object, captured instead of being rebuilt from its embedded source."""

    class_name: str
    state: dict  # the object's __dict__: attributes, _parameters, _buffers, _modules, _init_kwargs, ...
    src_sha1: str  # fingerprint of the embedded module source (the source itself is never run)
    src_flags: frozenset = field(default_factory=frozenset)  # 'nv3' | 'ada' | 'slideflow' markers

    def child(self, name: str) -> "PersistentRecord | None":
        """The child module record called name, or None."""
        child = self.mapping("_modules").get(name)
        if child is not None and not isinstance(child, PersistentRecord):
            raise UserError(f"network pickle holds a non-network module {name} in {self.class_name}: not supported")
        return child

    def mapping(self, key: str) -> dict:
        """A dict in the state (_parameters, _buffers, _modules, ...), {} when absent; UserError if not a dict."""
        value = self.state.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UserError(f"malformed network pickle: {self.class_name}.{key} is a {type(value).__name__}, "
                            "not a dict")
        return value

    def attr(self, name: str, default=None):
        """A plain attribute of the object (numpy scalars converted to Python numbers)."""
        value = self.state.get(name, default)
        value = value.value if isinstance(value, NumpyArray) else value
        return value.item() if isinstance(value, np.generic) else value


@dataclass
class NumpyArray:
    """A numpy array from a pickle: `value` is an ndarray of a numeric/string dtype, or a list for object arrays."""

    value: object = None


def _ndarray(*args):
    """Stands for `numpy.ndarray` where a pickle names it: only as the class argument of `_reconstruct`."""
    raise UserError("network pickle calls numpy.ndarray directly: refused")


class _Dtype:
    """`numpy.dtype(name, align, copy)` + its BUILD state, accepted only for names in a fixed table."""

    def __init__(self, name, align=False, copy=True):
        if not isinstance(name, str):
            raise UserError("malformed network pickle: numpy dtype without a name")
        self.name, self.order = name, "="
        if name in _NUMPY_CODES:
            self.code = _NUMPY_CODES[name]
        elif name[:1] in ("U", "S") and name[1:].isdigit() and 0 < int(name[1:]) <= 1 << 16:
            self.code = name
        elif name in ("O4", "O8"):
            self.code = "O"
        else:
            raise UserError(f"network pickle holds a numpy dtype {name[:20]!r}: only plain numbers and strings "
                            "are read")

    def __setstate__(self, state):
        if (not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] != 3
                or state[1] not in ("<", ">", "|", "=") or any(s is not None for s in state[2:5])
                or (len(state) == 9 and state[8])):
            raise UserError(f"network pickle holds a numpy {self.name} dtype with fields or metadata: refused")
        self.order = state[1]

    def numpy(self) -> np.dtype:
        """The numpy dtype, built from our own table (object dtype is never built)."""
        if self.code == "O":
            raise UserError("network pickle holds a numpy object scalar: refused")
        return np.dtype(("" if self.order in "|=" else self.order) + self.code)


@dataclass
class _Storage:
    flat: torch.Tensor  # 1-D, the storage's elements


@dataclass
class _StorageRef:
    dtype: torch.dtype
    key: str
    numel: int


def _int(x, what: str, lo: int = 0) -> int:
    if type(x) is not int or x < lo:
        raise UserError(f"malformed network pickle: {what} is not an integer >= {lo}")
    return x


def _flat_key(x) -> None:
    """Dict keys and set items must be flat values, so hashing them cannot recurse."""
    if not (isinstance(x, _ATOMS) or (type(x) is tuple and len(x) <= 16 and all(isinstance(v, _ATOMS) for v in x))):
        raise UserError(f"network pickle uses a {type(x).__name__} as a dict key or set item: refused")


def _source_flags(src: str) -> frozenset:
    flags = set()
    if "update_emas" in src:
        flags.add("nv3")
    if "skip_w_avg_update" in src:
        flags.add("ada")
    if "InterpolatedMappingNetwork" in src or "EmbeddingGenerator" in src:
        flags.add("slideflow")
    return frozenset(flags)


def _refuse(module: str, name: str):
    raise UserError(f"network pickle refers to {module}.{name}, which a network file never needs: refused "
                    "(nothing was executed)")


def _refuse_opcode(what: str):
    def load(self):
        raise UserError(f"network pickle uses {what}, which a network file never needs: refused")
    return load


class _Bounded:
    """A binary file whose reads never ask for more than what is left (a size field cannot allocate more)."""

    def __init__(self, f, size: int):
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.f.readline(min(self.left, 1 << 16))
        self.left -= len(line)
        return line

    def readinto(self, b) -> int:
        raise UserError("network pickle uses out-of-band buffers: refused")


class _Dispatch(dict):
    """The unpickler's opcode table, counting opcodes (a tiny file cannot run forever or build millions)."""

    def __init__(self, table: dict, limit: int):
        super().__init__(table)
        self.left = limit

    def __getitem__(self, op: int):
        self.left -= 1
        if self.left < 0:
            raise UserError(f"network pickle has more than {MAX_OPS} operations: refused")
        try:
            return dict.__getitem__(self, op)
        except KeyError:
            raise pickle.UnpicklingError(f"invalid pickle opcode {op:#x}") from None


class _RestrictedUnpickler(pickle._Unpickler):
    """Pure-Python unpickler with a charged budget, flat keys, and BUILD only on our own records."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, f, size: int, budget: list[int]):
        super().__init__(_Bounded(f, size), encoding="latin1")
        self.budget = budget  # [bytes left]; shared with nested storage payloads
        self.dispatch = _Dispatch(type(self).dispatch, MAX_OPS)

    def charge(self, n: int) -> None:
        """Count n bytes against the budget of things this pickle may build."""
        self.budget[0] -= n
        if self.budget[0] < 0:
            raise UserError("network pickle builds more data than the file holds (a size bomb?): refused")

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, (_Dtype, NumpyArray)):
            inst.__setstate__(state)
        elif state:  # an empty state is what EasyDict & co. carry
            raise UserError(f"network pickle sets the state of a {type(inst).__name__}: refused")

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is not dict or args:  # EasyDict (mapped to dict) is the one class reference pickles create so
            raise UserError("network pickle creates an object other than a dict with NEWOBJ: refused "
                            "(nothing was executed)")
        self.append(cls())

    def load_dict(self):
        items = self.pop_mark()
        d = {}
        for i in range(0, len(items) - 1, 2):
            _flat_key(items[i])
            d[items[i]] = items[i + 1]
        self.append(d)

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self._setitems([key, value])

    def load_setitems(self):
        self._setitems(self.pop_mark())

    def _setitems(self, items):
        target = self.stack[-1]
        if not isinstance(target, dict):
            raise UserError(f"malformed network pickle: dict items set on a {type(target).__name__}")
        for i in range(0, len(items) - 1, 2):
            _flat_key(items[i])
            target[items[i]] = items[i + 1]

    def load_additems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if not isinstance(target, set):
            raise UserError(f"malformed network pickle: set items added to a {type(target).__name__}")
        target.update(self._set(items))

    def load_frozenset(self):
        self.append(frozenset(self._set(self.pop_mark())))

    def _set(self, items) -> set:
        if not isinstance(items, (list, tuple)):
            raise UserError(f"malformed network pickle: a set built from a {type(items).__name__}")
        self.charge(8 * len(items))
        for x in items:
            _flat_key(x)
        return set(items)

    def _ordered_dict(self, items=()):
        if not isinstance(items, (list, tuple)):
            raise UserError(f"malformed network pickle: an OrderedDict built from a {type(items).__name__}")
        self.charge(16 * len(items))
        d = collections.OrderedDict()
        for kv in items:
            if not (isinstance(kv, (tuple, list)) and len(kv) == 2):
                raise UserError("malformed network pickle: an OrderedDict item is not a (key, value) pair")
            _flat_key(kv[0])
            d[kv[0]] = kv[1]
        return d

    def _latin1_bytes(self, text: str, encoding: str = "latin1") -> bytes:
        """`_codecs.encode` as protocol-2 pickles use it to spell bytes objects."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise UserError("network pickle uses _codecs.encode for something other than bytes: refused")
        self.charge(len(text))
        return text.encode("latin1")

    for _op, _what in ((pickle.INST, "INST"), (pickle.OBJ, "OBJ"), (pickle.NEWOBJ_EX, "NEWOBJ_EX"),
                       (pickle.EXT1, "extension codes"), (pickle.EXT2, "extension codes"),
                       (pickle.EXT4, "extension codes"), (pickle.BYTEARRAY8, "out-of-band buffers"),
                       (pickle.NEXT_BUFFER, "out-of-band buffers"), (pickle.READONLY_BUFFER, "out-of-band buffers")):
        dispatch[_op[0]] = _refuse_opcode(_what)
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset
    del _op, _what


class _StoragePayload(_RestrictedUnpickler):
    """The small pickles of one legacy `torch.save(storage)` payload: only `torch.<Type>Storage` and its id."""

    def find_class(self, module: str, name: str):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        _refuse(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)
                and isinstance(pid[2], str) and pid[5] is None):
            raise UserError("malformed network pickle: a storage payload with an unexpected id (views are not read)")
        return _StorageRef(pid[1], pid[2], _int(pid[4], "a storage size"))


class NetworkUnpickler(_RestrictedUnpickler):
    """Unpickler that captures persistent network objects and resolves only allow-listed globals."""

    def __init__(self, f, size: int):
        super().__init__(f, size, [2 * size + SLACK])  # protocol 2 spells each storage twice (str, then bytes)
        self.tensor_budget = [size + SLACK]  # bytes of tensor views: a storage cannot be viewed twice over
        self._src = {}  # id(module_src) -> (sha1, flags): sources are memoised, fingerprint each once
        self.allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
            ("torch.storage", "_load_from_bytes"): self._load_storage,
            ("collections", "OrderedDict"): self._ordered_dict,
            ("builtins", "set"): lambda items=(): self._set(items),
            ("builtins", "frozenset"): lambda items=(): frozenset(self._set(items)),
            ("_codecs", "encode"): self._latin1_bytes,
            ("numpy", "dtype"): _Dtype,
            ("numpy", "ndarray"): _ndarray,
        }
        for np_core in ("numpy.core", "numpy._core"):
            self.allowed[(np_core + ".multiarray", "scalar")] = _numpy_scalar
            self.allowed[(np_core + ".multiarray", "_reconstruct")] = _numpy_reconstruct

    def find_class(self, module: str, name: str):
        module = "builtins" if module == "__builtin__" else module  # protocol 2 spelling
        if name == "_reconstruct_persistent_obj" and (module == "torch_utils.persistence"
                                                      or module.endswith(".torch_utils.persistence")):
            return self._capture_persistent_obj
        if name == "EasyDict" and (module == "dnnlib.util" or module.endswith(".dnnlib.util")):
            return dict
        if module.split(".")[-2:] == ["tflib", "network"] and name == "Network":
            raise UserError("this is a legacy TensorFlow StyleGAN pickle, which is not supported: convert it to "
                            "a PyTorch pickle first with NVIDIA's legacy.py (stylegan2-ada-pytorch)")
        fn = self.allowed.get((module, name))
        if fn is None:
            _refuse(module, name)
        return fn

    def persistent_load(self, pid):
        raise UserError("network pickle uses persistent ids (a torch.save zip file?): not a network pickle")

    def _capture_persistent_obj(self, meta) -> PersistentRecord:
        """Stand-in for `torch_utils.persistence._reconstruct_persistent_obj`: record, never execute."""
        if not isinstance(meta, dict):
            raise UserError("malformed network pickle: a persistent object has no metadata dict")
        version = meta.get("version")
        if type(version) is not int or version != PERSISTENCE_VERSION:
            raise UserError(f"unsupported torch_utils.persistence version "
                            f"{version if isinstance(version, int) else type(version).__name__} in the network "
                            f"pickle (expected {PERSISTENCE_VERSION})")
        name = meta.get("class_name")
        if meta.get("type") != "class" or not isinstance(name, str) or len(name) > 200:
            raise UserError("malformed network pickle: persistent object is not a class instance")
        state = meta.get("state")
        if not isinstance(state, dict):
            raise UserError(f"malformed network pickle: {name} has no state dict")
        src = meta.get("module_src")
        src = src if isinstance(src, str) else ""
        if id(src) not in self._src:
            self._src[id(src)] = (src, hashlib.sha1(src.encode()).hexdigest(), _source_flags(src))
        _, sha, flags = self._src[id(src)]
        return PersistentRecord(name, state, sha, flags)

    def _load_storage(self, data: bytes) -> _Storage:
        """`torch.storage._load_from_bytes`: parse the legacy `torch.save` of one typed storage ourselves."""
        if not isinstance(data, bytes):
            raise UserError("malformed network pickle: a storage payload is not bytes")
        self.charge(len(data))
        f = io.BytesIO(data)

        def part():
            return _StoragePayload(f, len(data) - f.tell(), self.budget).load()

        if data[:2] == b"PK":
            raise UserError("network pickle holds a zip-format storage, which reference pickles never do: refused")
        magic, protocol, sys_info = part(), part(), part()
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise UserError("malformed network pickle: a storage payload is not a legacy torch.save file")
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise UserError("network pickle holds big-endian storages: not supported")
        ref, keys = part(), part()
        if not isinstance(ref, _StorageRef) or keys != [ref.key]:
            raise UserError("malformed network pickle: a storage payload does not hold exactly one storage")
        head = f.read(8)
        itemsize = torch.empty(0, dtype=ref.dtype).element_size()
        start = f.tell()
        if len(head) != 8 or int.from_bytes(head, "little", signed=True) != ref.numel \
                or len(data) - start != ref.numel * itemsize:
            raise UserError(f"malformed network pickle: a storage of {ref.numel} elements has "
                            f"{max(len(data) - start, 0)} bytes")
        if ref.numel == 0:
            return _Storage(torch.empty(0, dtype=ref.dtype))
        return _Storage(torch.frombuffer(bytearray(memoryview(data)[start:]), dtype=ref.dtype))

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                           metadata=None) -> torch.Tensor:
        """A view of a storage, after checking that every element it addresses lies inside the storage."""
        if not isinstance(storage, _Storage):
            raise UserError("malformed network pickle: a tensor without a storage")
        if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride) <= MAX_NDIM):
            raise UserError("malformed network pickle: a tensor with a bad size/stride")
        offset = _int(storage_offset, "a tensor offset")
        size = [_int(n, "a tensor size") for n in size]
        stride = [_int(s, "a tensor stride") for s in stride]
        numel, n_storage = math.prod(size), storage.flat.numel()
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if numel else offset - 1
        if offset > n_storage or last >= n_storage:
            raise UserError(f"malformed network pickle: a tensor of size {tuple(size)} reaches past its storage "
                            f"of {n_storage} elements")
        self.tensor_budget[0] -= numel * storage.flat.element_size()
        if self.tensor_budget[0] < 0:
            raise UserError("network pickle views its storages more often than the file can hold: refused")
        return storage.flat.as_strided(size, stride, offset)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UserError("malformed network pickle: a parameter that is not a tensor")
    return data  # parameters are read as plain tensors


def _numpy_scalar(dtype, data=None):
    """`numpy.core.multiarray.scalar`: a number from its bytes and a dtype of our table."""
    if not isinstance(dtype, _Dtype):
        raise UserError("malformed network pickle: a numpy scalar without a dtype")
    dt = dtype.numpy()
    if data is None:
        return dt.type()
    if not isinstance(data, bytes) or len(data) != dt.itemsize:
        raise UserError(f"malformed network pickle: a numpy {dtype.name} scalar of the wrong size")
    return np.frombuffer(data, dtype=dt, count=1)[0]


def _numpy_reconstruct(cls, shape=None, typecode=None) -> NumpyArray:
    """`numpy.core.multiarray._reconstruct(ndarray, ...)`: an empty record that its BUILD state fills."""
    if cls is not _ndarray:
        raise UserError("network pickle reconstructs a numpy object that is not an array: refused")
    return NumpyArray()


def _fill_array(rec: NumpyArray, state) -> None:
    """BUILD state (version, shape, dtype, fortran, rawdata) of an array -> rec.value."""
    if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[1], tuple)
            and isinstance(state[2], _Dtype) and len(state[1]) <= MAX_NDIM):
        raise UserError("malformed network pickle: a numpy array with a bad state")
    shape = tuple(_int(n, "a numpy array size") for n in state[1])
    dtype, raw = state[2], state[4]
    if dtype.code == "O":  # the items were unpickled like everything else; keep them as a list
        if not isinstance(raw, list) or len(raw) != math.prod(shape):
            raise UserError("malformed network pickle: a numpy object array with a bad state")
        rec.value = raw
        return
    dt = dtype.numpy()
    if not isinstance(raw, bytes) or len(raw) != math.prod(shape) * dt.itemsize:
        raise UserError(f"malformed network pickle: a numpy array of shape {shape} does not match its bytes")
    rec.value = np.frombuffer(raw, dtype=dt).reshape(shape, order="F" if state[3] is True else "C")


NumpyArray.__setstate__ = _fill_array


def _containers(x):
    """The children of x the structure walk follows (dict keys are flat, so only values)."""
    if isinstance(x, dict):
        return x.values()
    if isinstance(x, (list, tuple, set, frozenset)):
        return x
    if isinstance(x, PersistentRecord):
        return (x.state,)
    if isinstance(x, NumpyArray) and isinstance(x.value, list):
        return (x.value,)
    return ()


def check_structure(root) -> None:
    """UserError if the unpickled object graph has a cycle or nests deeper than MAX_DEPTH (walked iteratively)."""
    height: dict[int, int] = {}  # id -> height of a finished subtree
    active: set[int] = set()
    stack = [[root, iter(_containers(root)), 0]]
    active.add(id(root))
    while stack:
        top = stack[-1]
        child = next(top[1], stack)  # the stack itself marks the end
        if child is stack:
            stack.pop()
            active.discard(id(top[0]))
            height[id(top[0])] = top[2]
            if stack:
                stack[-1][2] = max(stack[-1][2], top[2] + 1)
            continue
        if not isinstance(child, (dict, list, tuple, set, frozenset, PersistentRecord, NumpyArray)):
            continue
        if id(child) in active:
            raise UserError("network pickle holds a cycle (an object that contains itself): refused")
        if id(child) in height:  # shared (memoised) object: its subtree was measured already
            depth = len(stack) + height[id(child)]
            top[2] = max(top[2], height[id(child)] + 1)
        else:
            active.add(id(child))
            stack.append([child, iter(_containers(child)), 0])
            depth = len(stack) - 1
        if depth > MAX_DEPTH:
            raise UserError(f"network pickle nests objects more than {MAX_DEPTH} levels deep: refused")


def _first_line(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text[:200]}"


def read_network_pickle(path: str | Path) -> dict:
    """Unpickle a reference network pickle into {'G': rec, 'D': rec, 'G_ema': rec, ...} of records."""
    path = Path(path)
    try:
        f = open(os.path.realpath(path), "rb")
    except FileNotFoundError:
        raise UserError(f"network file not found: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read network file {path}: {e.strerror}") from None
    with f:
        try:
            data = NetworkUnpickler(f, os.fstat(f.fileno()).st_size).load()
            check_structure(data)
        except UserError as e:
            raise UserError(f"{path}: {e}") from None
        except Exception as e:  # truncated / corrupt / not a pickle
            raise UserError(f"{path} is not a readable network pickle ({_first_line(e)})") from None
    if isinstance(data, PersistentRecord):
        data = {"G_ema": data}
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), PersistentRecord):
        raise UserError(f"{path} holds no G_ema network (expected a StyleGAN2-ADA/StyleGAN3 snapshot pickle)")
    return data


def record_state_dict(rec: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Reference state dict of a record: own parameters, own buffers, then children, names joined by '.'."""
    out: dict[str, torch.Tensor] = {}
    non_persistent = rec.state.get("_non_persistent_buffers_set") or set()
    if not isinstance(non_persistent, (set, frozenset)):
        raise UserError(f"malformed network pickle: {prefix}_non_persistent_buffers_set is not a set")
    for kind in ("_parameters", "_buffers"):
        for name, t in rec.mapping(kind).items():
            if t is None or (kind == "_buffers" and name in non_persistent):
                continue
            if not isinstance(t, torch.Tensor) or not isinstance(name, str):
                raise UserError(f"malformed network pickle: {prefix}{name} is not a tensor")
            out[prefix + name] = t
    for name in rec.mapping("_modules"):
        child = rec.child(name)
        if child is not None:
            out.update(record_state_dict(child, f"{prefix}{name}."))
    return out
