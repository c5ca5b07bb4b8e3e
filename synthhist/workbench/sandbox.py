"""Load files picked in the page in a spawned child process, so a crafted file cannot take the server down.

The child loads the network or classifier with the ordinary loaders and sends back only plain data: a JSON
header and the weights as safetensors bytes (never a pickle). The server builds the modules from those.
A child that fails, crashes (e.g. a segfault) or takes too long becomes a UserError with one line.
"""

from __future__ import annotations

import json
import multiprocessing
import traceback
from pathlib import Path

import numpy as np
import torch

from synthhist.errors import UserError

LOAD_TIMEOUT_S = 300.0


def _child(kind: str, path: str, conn) -> None:
    """Child process: load `path`, send (header JSON, safetensors bytes) or an error header."""
    try:
        header, blob = (_network_state if kind == "network" else _classifier_state)(path)
    except UserError as e:
        header, blob = {"error": str(e)}, b""
    except BaseException as e:  # the one line the page shows; the traceback stays in the child
        line = str(e).splitlines()[0][:300] if str(e) else traceback.format_exc(limit=1).splitlines()[-1]
        header, blob = {"error": f"{type(e).__name__}: {line}"}, b""
    conn.send_bytes(json.dumps(header).encode())
    conn.send_bytes(blob)
    conn.close()


def _network_state(path: str) -> tuple[dict, bytes]:
    from safetensors.torch import save

    from synthhist.gan import load_network

    net = load_network(path, device="cpu")
    state = {k: v.detach().contiguous().clone() for k, v in net.G.state_dict().items()}
    return {"G_kwargs": net.G.init_kwargs, "class_names": net.class_names, "tile_px": net.tile_px,
            "tile_um": net.tile_um, "source": net.source}, save(state)


def _classifier_state(path: str) -> tuple[dict, bytes]:
    import keras
    from safetensors.numpy import save

    from synthhist.classifier import load_classifier

    clf = load_classifier(path)
    clf.predict(np.zeros((1, clf.tile_px, clf.tile_px, 3), np.uint8))  # a graph that crashes does so here
    header = {"params": clf.params, "source": clf.source, "uq": clf.uq, "model": None}
    if not isinstance(clf.model, keras.Model):  # a TF SavedModel: the server loads it after this child did
        return header, b""
    header["model"] = keras.saving.serialize_keras_object(clf.model)
    return header, save({f"{i:05d}": np.ascontiguousarray(w) for i, w in enumerate(clf.model.get_weights())})


def _in_child(kind: str, path: str, timeout_s: float) -> tuple[dict, bytes]:
    """Run the loader of `kind` on `path` in a spawned process; (header, blob) or UserError."""
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(kind, path, send), name=f"workbench-load-{kind}", daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout_s):
            raise UserError(f"loading {path} took longer than {timeout_s:g} s: stopped")
        header = json.loads(recv.recv_bytes())
        blob = recv.recv_bytes()
    except (EOFError, OSError):
        proc.join(5)
        raise UserError(f"could not load {path}: the loader crashed ({_exit_text(proc.exitcode)})") from None
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if "error" in header:
        raise UserError(f"could not load {path}: {header['error']}")
    return header, blob


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def load_network(path: str | Path, device: torch.device, timeout_s: float = LOAD_TIMEOUT_S):
    """GanNetwork (G_ema only) from a file loaded in a child process."""
    from safetensors.torch import load

    from synthhist.gan import GanNetwork, Generator

    header, blob = _in_child("network", str(path), timeout_s)
    G = Generator(**header["G_kwargs"])
    G.load_state_dict(load(blob))
    G = G.to(device).eval().requires_grad_(False)
    return GanNetwork(G=G, class_names=header["class_names"], tile_px=header["tile_px"], tile_um=header["tile_um"],
                      source=header["source"])


def load_classifier(path: str | Path, timeout_s: float = LOAD_TIMEOUT_S):
    """Classifier from a folder loaded (and run once) in a child process; Keras weights come back as arrays."""
    header, blob = _in_child("classifier", str(path), timeout_s)
    if header["model"] is None:
        from synthhist.classifier import load_classifier as load_in_process

        return load_in_process(path)
    import keras
    from safetensors.numpy import load

    from synthhist.classifier.load import Classifier, mc_dropout_model

    model = keras.saving.deserialize_keras_object(header["model"], safe_mode=True)
    weights = load(blob)
    model.set_weights([weights[k] for k in sorted(weights)])
    mc = mc_dropout_model(model)
    return Classifier(lambda x: model(x, training=False), lambda x: mc(x, training=False),
                      int(model.output_shape[-1]), header["params"], header["source"], header["uq"], model)
