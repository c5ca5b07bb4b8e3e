"""A slideflow classifier folder (TF SavedModel) loaded without running its saved graph: the network is rebuilt
in Keras from params.json hp (docs/slideflow.md §4.2) and its variables are read from the checkpoint
variables/variables.{index,data-*} by following the checkpoint's object graph (docs/slideflow.md §4.7).

Two layouts are read: Keras 2 (`model.save`, what slideflow writes: the root has `layer_with_weights-<i>` children,
nested models the same, leaf layers hold `kernel`, `bias`, `gamma` ...) and Keras 3 (`model.export`: the root has a
`variables` list in `model.variables` order). Every variable of the rebuilt model and every model variable of the
checkpoint must be matched, by position, name and shape; optimizer and metric state is ignored."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from synthhist.classifier.hparams import DEFAULT_HP, model_type_of
from synthhist.classifier.model import build_model
from synthhist.errors import UserError

GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
MAX_GRAPH_BYTES = 256 << 20  # the object graph of an Xception classifier is about 1 MB
_WITH_WEIGHTS = "layer_with_weights-"
_KERAS2_NAMES = {("DepthwiseConv2D", "kernel"): "depthwise_kernel"}  # Keras 3 weight name -> Keras 2's
_ARCH_KEYS = ("model", "pooling", "dropout", "hidden_layers", "hidden_layer_width")


def _children(node) -> dict[str, int]:
    return {c.local_name: c.node_id for c in node.children}


def _variable_key(graph, node_id: int) -> str | None:
    """Checkpoint key of a variable node (None when the node is not a variable)."""
    keys = [a.checkpoint_key for a in graph.nodes[node_id].attributes if a.name == "VARIABLE_VALUE"]
    return keys[0] if keys else None


def _weighted(children: dict[str, int]) -> list[int]:
    """Node ids of the layer_with_weights-<i> children, in index order."""
    idx = sorted(int(n[len(_WITH_WEIGHTS):]) for n in children if n.startswith(_WITH_WEIGHTS)
                 and n[len(_WITH_WEIGHTS):].isdigit())
    return [children[f"{_WITH_WEIGHTS}{i}"] for i in idx]


def keras2_layers(graph, node_id: int = 0) -> list[dict[str, str]]:
    """Leaf layers with weights of a Keras 2 checkpoint, in layer order: [{weight name: checkpoint key}]."""
    out = []
    for child in _weighted(_children(graph.nodes[node_id])):
        grand = _children(graph.nodes[child])
        if _weighted(grand):
            out += keras2_layers(graph, child)
        else:
            out.append({name: key for name, nid in grand.items() if (key := _variable_key(graph, nid))})
    return out


def keras_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Leaf layers with weights of a Keras model (nested models flattened), in layer order."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += keras_layers(layer)
        elif layer.weights:
            out.append(layer)
    return out


def _listed(graph, name: str) -> list[str]:
    """Checkpoint keys of the root's list `name` (e.g. 'variables'), in list order."""
    node = _children(graph.nodes[0]).get(name)
    if node is None:
        return []
    items = _children(graph.nodes[node])
    return [key for i in sorted(int(n) for n in items if n.isdigit()) if (key := _variable_key(graph, items[str(i)]))]


def _match(model: keras.Model, graph, shapes: dict[str, list[int]]) -> tuple[list[tuple], list[str]]:
    """([(keras variable, checkpoint key)], [problems]) for either checkpoint layout."""
    pairs, problems = [], []
    theirs = keras2_layers(graph)
    if theirs:
        ours = keras_layers(model)
        for i, layer in enumerate(ours):
            if i >= len(theirs):
                problems.append(f"layer {layer.name} ({', '.join(w.name for w in layer.weights)}): not in the checkpoint")
                continue
            keys = dict(theirs[i])
            for w in layer.weights:
                key = keys.pop(w.name, None) or keys.pop(_KERAS2_NAMES.get((type(layer).__name__, w.name)), None)
                if key is None:
                    problems.append(f"{w.path}: no '{w.name}' in checkpoint layer {i} (has {sorted(theirs[i])})")
                else:
                    pairs.append((w, key))
            problems += [f"{key} (checkpoint layer {i}): no such weight in {layer.name}" for key in keys.values()]
        for i in range(len(ours), len(theirs)):
            problems += [f"{key}: checkpoint layer {i} has no layer in the rebuilt model" for key in theirs[i].values()]
    else:
        keys = _listed(graph, "variables")
        if not keys:
            raise UserError("the checkpoint has neither Keras layers nor a variables list (not a Keras SavedModel?)")
        variables = model.variables
        for v, key in zip(variables, keys):
            pairs.append((v, key))
        problems += [f"{v.path}: not in the checkpoint" for v in variables[len(keys):]]
        problems += [f"{key}: no variable in the rebuilt model" for key in keys[len(variables):]]
    for v, key in pairs:
        if list(shapes.get(key, [])) != list(v.shape):
            problems.append(f"{v.path} {tuple(v.shape)} vs {key} {tuple(shapes.get(key, []))}: shapes differ")
    listed = set(_listed(graph, "variables"))
    problems += [f"{key}: model variable not matched" for key in sorted(listed - {k for _, k in pairs})]
    return pairs, problems


def architecture_hp(params: dict) -> dict:
    """The hp keys that shape the network (defaults where params.json leaves them out); regularisers play no part
    at inference."""
    hp = params.get("hp") or {}
    if not isinstance(hp, dict) or "model" not in hp:
        raise UserError("params.json hp does not name the network (hp.model)")
    out = {**DEFAULT_HP, **{k: hp[k] for k in _ARCH_KEYS if hp.get(k) is not None}}
    return {**out, "l1": 0, "l2": 0, "l1_dense": 0, "l2_dense": 0}


def n_outputs_of(params: dict) -> int:
    """Width of the output layer: one per class (categorical), one per outcome (linear)."""
    if (params.get("model_type") or model_type_of(params.get("hp") or {})) == "categorical":
        return len(params.get("outcome_labels") or {}) or 2
    return len(params.get("outcomes") or []) or 1


def rebuild_savedmodel(path: Path, params: dict) -> keras.Model:
    """The Keras model of a SavedModel folder, rebuilt from params.json and filled from its checkpoint; no graph
    from the folder is run. One UserError names every variable that does not match."""
    prefix = path / "variables" / "variables"
    if not prefix.with_suffix(".index").is_file():
        raise UserError(f"{path}: no variables/variables.index (not a TF SavedModel with weights)")
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        shapes = reader.get_variable_to_shape_map()
        if GRAPH_KEY not in shapes:
            raise UserError(f"{path}: the checkpoint has no object graph (not a TF2 SavedModel)")
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        raw = reader.get_tensor(GRAPH_KEY)
        if len(raw) > MAX_GRAPH_BYTES:
            raise UserError(f"{path}: checkpoint object graph of {len(raw)} bytes is implausibly large")
        graph.ParseFromString(raw)
    except (tf.errors.OpError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: cannot read the checkpoint ({str(e).splitlines()[0][:200]})") from None
    if not graph.nodes:
        raise UserError(f"{path}: empty checkpoint object graph")
    model_type = params.get("model_type") or model_type_of(params.get("hp") or {})
    try:
        model = build_model(architecture_hp(params), int(params["tile_px"]), n_outputs_of(params), model_type,
                            weights=None)
    except UserError as e:
        raise UserError(f"{path}: cannot rebuild the network from params.json ({e}); pass --trust-classifier to run "
                        "the folder's saved graph instead (only for folders you trust)") from None
    pairs, problems = _match(model, graph, shapes)
    if problems:
        more = f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""
        raise UserError(f"{path}: the checkpoint does not fit the {params['hp']['model']} network params.json "
                        f"describes; unmatched variables: {'; '.join(problems[:8])}{more}")
    for v, key in pairs:
        v.assign(np.asarray(reader.get_tensor(key)).astype(v.dtype))
    return model
