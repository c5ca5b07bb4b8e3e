"""Read StyleGAN2-ADA / StyleGAN3 / slideflow network pickles without executing anything in them.

The reference code pickles every network module through `torch_utils.persistence`: each object becomes a
call `_reconstruct_persistent_obj(meta)` where meta holds the module source, the class name and the
object's `__dict__` (spec 3.2). This unpickler never imports or runs that source: the reconstruct call
returns a `PersistentRecord`, and only a short allow-list of data-rebuilding globals is resolved
(tensors, storages, OrderedDict, numpy scalars/arrays, EasyDict -> dict). Anything else is refused.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synthhist.errors import UserError

PERSISTENCE_VERSION = 6  # `_version` of torch_utils/persistence.py in ADA, NV3 and the slideflow fork


@dataclass
class PersistentRecord:
    """One persistent network object, captured instead of being rebuilt from its embedded source."""

    class_name: str
    state: dict  # the object's __dict__: attributes, _parameters, _buffers, _modules, _init_kwargs, ...
    src_sha1: str  # fingerprint of the embedded module source (the source itself is never run)
    src_flags: frozenset = field(default_factory=frozenset)  # 'nv3' | 'ada' | 'slideflow' markers

    def child(self, name: str) -> "PersistentRecord | None":
        """The child module record called name, or None."""
        return (self.state.get("_modules") or {}).get(name)

    def attr(self, name: str, default=None):
        """A plain attribute of the object (numpy scalars converted to Python numbers)."""
        value = self.state.get(name, default)
        return value.item() if isinstance(value, np.generic) else value


def _source_flags(src: str) -> frozenset:
    flags = set()
    if "update_emas" in src:
        flags.add("nv3")
    if "skip_w_avg_update" in src:
        flags.add("ada")
    if "InterpolatedMappingNetwork" in src or "EmbeddingGenerator" in src:
        flags.add("slideflow")
    return frozenset(flags)


def _capture_persistent_obj(meta) -> PersistentRecord:
    """Stand-in for `torch_utils.persistence._reconstruct_persistent_obj`: record, never execute."""
    if not isinstance(meta, dict):
        raise UserError("malformed network pickle: a persistent object has no metadata dict")
    version = meta.get("version")
    if version != PERSISTENCE_VERSION:
        raise UserError(f"unsupported torch_utils.persistence version {version!r} in the network pickle "
                        f"(expected {PERSISTENCE_VERSION})")
    if meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise UserError("malformed network pickle: persistent object is not a class instance")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise UserError(f"malformed network pickle: {meta['class_name']} has no state dict")
    src = meta.get("module_src") or ""
    src = src if isinstance(src, str) else ""
    return PersistentRecord(meta["class_name"], state, hashlib.sha1(src.encode()).hexdigest(), _source_flags(src))


def _load_storage_from_bytes(data: bytes):
    """`torch.storage._load_from_bytes`, but through torch's weights-only loader."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False,
                                               collections.OrderedDict())


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    return data  # parameters are read as plain tensors


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UserError("network pickle holds a numpy object scalar: refused")
    return np.frombuffer(data, dtype=dtype, count=1)[0] if data is not None else dtype.type()


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it to spell bytes objects."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UserError("network pickle uses _codecs.encode for something other than bytes: refused")
    return text.encode("latin1")


def _refuse(module: str, name: str):
    raise UserError(f"network pickle refers to {module}.{name}, which a network file never needs: refused "
                    "(nothing was executed)")


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NetworkUnpickler(pickle.Unpickler):
    """Unpickler that captures persistent network objects and resolves only allow-listed globals."""

    def find_class(self, module: str, name: str):
        module = "builtins" if module == "__builtin__" else module  # protocol 2 spelling
        if name == "_reconstruct_persistent_obj" and (module == "torch_utils.persistence"
                                                      or module.endswith(".torch_utils.persistence")):
            return _capture_persistent_obj
        if name == "EasyDict" and (module == "dnnlib.util" or module.endswith(".dnnlib.util")):
            return dict
        if module.split(".")[-2:] == ["tflib", "network"] and name == "Network":
            raise UserError("this is a legacy TensorFlow StyleGAN pickle, which is not supported: convert it to "
                            "a PyTorch pickle first with NVIDIA's legacy.py (stylegan2-ada-pytorch)")
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        fn = _ALLOWED.get((module, name))
        if fn is None:
            _refuse(module, name)
        return fn

    def persistent_load(self, pid):
        raise UserError("network pickle uses persistent ids (a torch.save zip file?): not a network pickle")


def read_network_pickle(path: str | Path) -> dict:
    """Unpickle a reference network pickle into {'G': rec, 'D': rec, 'G_ema': rec, ...} of records."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"network file not found: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read network file {path}: {e.strerror}") from None
    with f:
        try:
            data = NetworkUnpickler(f).load()
        except UserError as e:
            raise UserError(f"{path}: {e}") from None
        except Exception as e:  # truncated / corrupt / not a pickle
            raise UserError(f"{path} is not a readable network pickle ({type(e).__name__}: {e})") from None
    if isinstance(data, PersistentRecord):
        data = {"G_ema": data}
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), PersistentRecord):
        raise UserError(f"{path} holds no G_ema network (expected a StyleGAN2-ADA/StyleGAN3 snapshot pickle)")
    return data


def record_state_dict(rec: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Reference state dict of a record: own parameters, own buffers, then children, names joined by '.'."""
    out: dict[str, torch.Tensor] = {}
    non_persistent = rec.state.get("_non_persistent_buffers_set") or set()
    for kind in ("_parameters", "_buffers"):
        for name, t in (rec.state.get(kind) or {}).items():
            if t is None or (kind == "_buffers" and name in non_persistent):
                continue
            if not isinstance(t, torch.Tensor):
                raise UserError(f"malformed network pickle: {prefix}{name} is not a tensor")
            out[prefix + name] = t
    for name, child in (rec.state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise UserError(f"network pickle holds a non-network module {prefix}{name} "
                            f"({type(child).__name__}): not supported")
        out.update(record_state_dict(child, prefix + name + "."))
    return out
