"""Looking inside a network: its layers, its hidden units, its activations, its mistakes.

Each function returns a polars table; ``plots_inside`` turns the tables
into figures. Everything runs under ``torch.inference_mode`` with the model
in eval mode (its mode is restored afterwards) and never changes a weight.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from dsml._checks import as_tensor, require_labels, require_same_length
from dsml.scoring import collect_outputs
from dsml.train.batches import batches, is_dataset
from dsml.train.evaluation import EVAL_BATCH_SIZE, eval_mode, forward, model_device, predicted_codes

MAX_NAMES_LISTED = 40


# ---------------------------------------------------------------- helpers


def _layer_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def find_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """The ``(dotted name, module)`` for ``layer``, a name like ``"net.2"`` or a submodule of ``model``."""
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name or "(model)", module
        raise ValueError(
            f"the {type(layer).__name__} passed as layer is not part of this "
            f"{type(model).__name__}. Pass one of its layers, e.g. model.net[2], or a name."
        )
    if not isinstance(layer, str):
        raise TypeError(f"layer should be a dotted module name like 'net.2' or a module. Got {type(layer).__name__}.")
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        names = _layer_names(model)
        shown = ", ".join(repr(n) for n in names[:MAX_NAMES_LISTED])
        more = f" (and {len(names) - MAX_NAMES_LISTED} more)" if len(names) > MAX_NAMES_LISTED else ""
        raise ValueError(f"this {type(model).__name__} has no layer {layer!r}. Its layers are: {shown}{more}.")
    return layer, modules[layer]


def _first_tensor(output):
    """A module's output as one tensor: the first tensor of a tuple (an LSTM's ``(output, (h, c))``)."""
    while isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output if isinstance(output, torch.Tensor) else None


# ---------------------------------------------------------------- summary


def _shape_text(out, batch_dims: dict) -> str:
    """``(B, 128)`` for a tensor; nested lists for tuples; the type name otherwise."""
    if isinstance(out, torch.Tensor):
        dims = ["B" if i in batch_dims.get(id(out), ()) else str(d) for i, d in enumerate(out.shape)]
        return "(" + ", ".join(dims) + ")"
    if isinstance(out, (tuple, list)):
        return "[" + ", ".join(_shape_text(o, batch_dims) for o in out) + "]"
    return type(out).__name__


def _flatten(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _example_input(model: nn.Module, X_or_shape, rows: int) -> torch.Tensor | None:
    """A batch of ``rows`` identical examples from a tensor, a shape without the batch, or None."""
    device = model_device(model)
    if X_or_shape is None:
        first = next((m for m in model.modules() if not list(m.children()) and list(m.parameters(recurse=False))), None)
        if isinstance(first, nn.Linear):
            return torch.zeros(rows, first.in_features, device=device)
        return None
    if isinstance(X_or_shape, (tuple, list, torch.Size)) and all(isinstance(d, int) for d in X_or_shape):
        embeds = any(isinstance(m, nn.Embedding) for m in model.modules())
        dtype = torch.long if embeds else torch.float32  # token ids for a text model, zeros for the rest
        return torch.zeros(rows, *X_or_shape, dtype=dtype, device=device)
    X = torch.as_tensor(X_or_shape[0][0])[None] if is_dataset(X_or_shape) else as_tensor(X_or_shape, "X")
    if X.ndim == 0 or len(X) == 0:
        raise ValueError(f"summary needs at least one example row in X. Got shape {tuple(X.shape)}.")
    return X[:1].expand(rows, *X.shape[1:]).clone().to(device)


def _trace(model: nn.Module, modules: dict[str, nn.Module], xb: torch.Tensor) -> tuple[dict, object]:
    """Run ``xb`` through ``model``; return every listed module's outputs (one per call) and the model's."""
    seen: dict[str, list] = {name: [] for name in modules}
    handles = [
        m.register_forward_hook(lambda mod, inp, out, name=name: seen[name].append(out)) for name, m in modules.items()
    ]
    try:
        with eval_mode(model), torch.no_grad():
            out = forward(model, xb)
    finally:
        for h in handles:
            h.remove()
    return seen, out


def summary(model: nn.Module, X_or_input_shape=None) -> pl.DataFrame:
    """A table of the model's layers: output shapes and parameter counts, plus a total row.

    One small batch goes through the model with forward hooks on its leaf
    modules (and on any module holding parameters of its own). The batch
    dimension shows as ``B``: dsml runs batches of 2 and 3 rows and marks
    the dimensions that follow the batch size.

    Args:
        model: any ``nn.Module``.
        X_or_input_shape: example inputs (only the first row is used; a
            ``Dataset`` of ``(x, y)`` pairs works too), or the
            shape of one example without the batch, e.g. ``(784,)`` or
            ``(1, 28, 28)``. For a model that starts with ``nn.Linear`` it may
            be left out; otherwise shapes are left empty without it.

    Returns:
        A DataFrame with ``layer`` (dotted name), ``type``, ``output_shape``,
        ``params`` (parameters held by the layer) and ``trainable`` (how many
        of them require gradients), one row per layer, then a ``total`` row.
        Shared parameters are counted once.

    Example:
        >>> summary(DenseNet(), (784,))  # net.0 holds 784 * 128 + 128 = 100,480 parameters
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model should be a torch nn.Module. Got {type(model).__name__}.")
    named = list(model.named_modules())
    # leaves, and any module holding parameters of its own (a bare nn.Parameter beside its children)
    modules = {name or "(model)": m for name, m in named if not list(m.children()) or list(m.parameters(recurse=False))}
    shapes: dict[str, str | None] = {name: None for name in modules}
    model_shape = None
    small, large = (_example_input(model, X_or_input_shape, n) for n in (2, 3))
    if small is not None:
        (seen2, out2), (seen3, out3) = _trace(model, modules, small), _trace(model, modules, large)
        for name in modules:
            texts = []
            for a, b in zip(seen2[name], seen3[name]):
                texts.append(_shape_text(a, _batch_dims(a, b)))
            shapes[name] = " / ".join(dict.fromkeys(texts)) if texts else "(not called)"
        model_shape = _shape_text(out2, _batch_dims(out2, out3))

    counted: set[int] = set()
    rows = []
    for name, m in modules.items():
        params = trainable = 0
        for p in m.parameters(recurse=False):
            if id(p) in counted:
                continue
            counted.add(id(p))
            params += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        rows.append((name, type(m).__name__, shapes[name], params, trainable))
    unique = {id(p): p for p in model.parameters()}.values()
    rows.append(
        (
            "total",
            type(model).__name__,
            model_shape,
            sum(p.numel() for p in unique),
            sum(p.numel() for p in unique if p.requires_grad),
        )
    )
    return pl.DataFrame(
        rows,
        schema={"layer": pl.Utf8, "type": pl.Utf8, "output_shape": pl.Utf8, "params": pl.Int64, "trainable": pl.Int64},
        orient="row",
    )


def _batch_dims(a, b) -> dict:
    """For matching outputs of the 2-row and 3-row runs: tensor id -> dimensions that changed."""
    dims = {}
    for ta, tb in zip(_flatten(a), _flatten(b)):
        if isinstance(ta, torch.Tensor) and isinstance(tb, torch.Tensor) and ta.ndim == tb.ndim:
            dims[id(ta)] = {i for i, (da, db) in enumerate(zip(ta.shape, tb.shape)) if da != db}
    return dims


# ---------------------------------------------------------------- hidden units


def first_linear(model: nn.Module, layer: str | nn.Module | None = None) -> tuple[str, nn.Linear]:
    """The named ``nn.Linear`` layer, or the model's first one."""
    if layer is None:
        for name, m in model.named_modules():
            if isinstance(m, nn.Linear):
                return name or "(model)", m
        raise ValueError(f"this {type(model).__name__} has no nn.Linear layer, so it has no dense hidden units.")
    name, m = find_layer(model, layer)
    if not isinstance(m, nn.Linear):
        raise TypeError(f"layer {name!r} is a {type(m).__name__}; hidden-unit pictures need an nn.Linear layer.")
    return name, m


def hidden_units(
    model: nn.Module, image_shape: tuple[int, ...] = (28, 28), layer: str | nn.Module | None = None
) -> pl.DataFrame:
    """The weights of a dense layer's units, each reshaped to the input image.

    Each hidden unit of the first dense layer multiplies every pixel by a
    weight; drawn as an image, the weights show which pixels push the unit
    up (positive) or down (negative) (seed 004, "what do the hidden units
    look like").

    Args:
        model: a network whose dense layer reads flattened images.
        image_shape: ``(H, W)`` or ``(C, H, W)``; its product must equal the
            layer's ``in_features``.
        layer: a dotted name (``"net.0"``) or the module; default: the first
            ``nn.Linear``.

    Returns:
        A long DataFrame with ``unit``, ``channel`` (only for ``(C, H, W)``),
        ``row``, ``col`` and ``weight``, one row per weight.

    Example:
        >>> hidden_units(model).filter(pl.col("unit") == 0)  # 784 weights of unit 0
    """
    name, linear = first_linear(model, layer)
    shape = tuple(int(d) for d in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"image_shape should be (H, W) or (C, H, W) with positive sizes. Got {image_shape!r}.")
    pixels = math.prod(shape)
    if linear.in_features != pixels:
        raise ValueError(
            f"layer {name!r} takes {linear.in_features} inputs per row but image_shape {shape} has {pixels} "
            "values. Pass the shape of the images the model reads (e.g. (28, 28) for MNIST, (3, 32, 32) "
            "for colour), or the layer that reads the pixels."
        )
    weights = linear.weight.detach().float().cpu().numpy()
    units = weights.shape[0]
    c, h, w = (1, *shape) if len(shape) == 2 else shape
    unit, channel, row, col = np.meshgrid(np.arange(units), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    columns = {
        "unit": unit.ravel(),
        "channel": channel.ravel(),
        "row": row.ravel(),
        "col": col.ravel(),
        "weight": weights.reshape(units, c, h, w).ravel(),
    }
    if len(shape) == 2:
        del columns["channel"]
    return pl.DataFrame(columns)


# ---------------------------------------------------------------- activations


def _capture(
    model: nn.Module, module: nn.Module, name: str, X, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``X`` through ``model`` in batches; return ``module``'s outputs ``(N, K)`` and any labels the data held."""
    captured: list[torch.Tensor] = []

    def hook(mod, inp, out):
        t = _first_tensor(out)
        if t is not None:
            captured.append(t.detach().float().reshape(len(t), -1).cpu())

    chunks, labels = [], []
    handle = module.register_forward_hook(hook)
    try:
        with eval_mode(model), torch.inference_mode():
            for xb, yb in batches(X, None, batch_size, device=model_device(model)):
                captured.clear()
                forward(model, xb)
                if not captured:
                    raise ValueError(
                        f"layer {name!r} ({type(module).__name__}) was not used when the model ran "
                        "on X, so it has no activations. Pick a layer of the forward path."
                    )
                chunks.append(captured[-1])  # a layer called twice: its last call feeds what follows
                if yb is not None:
                    labels.append(yb.cpu())
    finally:
        handle.remove()
    if not chunks:
        raise ValueError("X has no rows, so there are no activations.")
    return torch.cat(chunks), (torch.cat(labels) if labels else None)


def principal_components(Z: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` principal-component scores of the rows of ``Z`` (centred, by SVD, float64).

    Signs are fixed so that each component's largest loading is positive,
    which makes the result repeatable.
    """
    Z = Z.double()
    if not 1 <= k <= min(Z.shape):
        raise ValueError(
            f"components should be between 1 and {min(Z.shape)} (rows {Z.shape[0]}, units {Z.shape[1]}). Got {k}."
        )
    Zc = Z - Z.mean(dim=0)
    U, S, Vh = torch.linalg.svd(Zc, full_matrices=False)
    signs = torch.sign(Vh[:k].gather(1, Vh[:k].abs().argmax(dim=1, keepdim=True))).squeeze(1)
    signs[signs == 0] = 1
    return U[:, :k] * S[:k] * signs


def activations(
    model: nn.Module,
    X,
    layer: str | nn.Module,
    y=None,
    cn=None,
    batch_size: int = EVAL_BATCH_SIZE,
    components: int | None = None,
) -> pl.DataFrame:
    """What one layer outputs for every row of ``X``: the latent space as a table.

    Args:
        model: a trained network.
        X: inputs (a tensor, or a ``Dataset`` of ``(x, y)`` pairs).
        layer: a dotted module name, e.g. ``"net.3"`` (see ``summary``), or
            the module itself. A layer returning a tuple (an LSTM) gives its
            first tensor; outputs of more than one dimension are flattened.
        y: class codes, to add a ``label`` column (a Dataset's labels are used
            when ``y`` is not given).
        cn: class names; ``label`` is then ``cn[y]``.
        batch_size: rows per forward pass.
        components: instead of every unit, give this many principal
            components of the activations (``pc1``, ``pc2``, ...).

    Returns:
        A wide DataFrame, one row per row of ``X``: ``h0 ... h{K-1}`` (or
        ``pc1 ... pc{components}``), then ``label`` as text when labels are known,
        ready for ``ggplot(df, aes("h0", "h1", color="label"))``.

    Example:
        >>> activations(model, X_test, "net.3", y_test, cn).head()
    """
    name, module = find_layer(model, layer)
    Z, data_labels = _capture(model, module, name, X, batch_size)
    if y is not None and not is_dataset(X):
        require_same_length(X, y)
    if components is not None:
        Z = principal_components(Z, int(components))
        columns = {f"pc{j + 1}": Z[:, j].numpy() for j in range(Z.shape[1])}
    else:
        columns = {f"h{j}": Z[:, j].numpy() for j in range(Z.shape[1])}
    labels = data_labels if y is None else as_tensor(y, "y")
    if labels is not None:
        codes = require_labels(labels).numpy()
        names = np.asarray(cn)[codes] if cn is not None else codes
        columns["label"] = [str(v) for v in names]
    return pl.DataFrame(columns)


# ---------------------------------------------------------------- mistakes


def row_losses(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each row's classification loss: cross-entropy, or binary cross-entropy for one output."""
    if outputs.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(outputs[:, 0], y.float(), reduction="none")
    return F.cross_entropy(outputs, y, reduction="none")


def misclassified(
    df: pl.DataFrame, model: nn.Module, X, y, cn=None, by: str = "misclassified", batch_size: int = EVAL_BATCH_SIZE
) -> pl.DataFrame:
    """The rows of ``df`` the model gets wrong, or all rows by loss, with predictions.

    Args:
        df: the table ``X`` was built from, one row per row of ``X`` in order
            (e.g. ``mnist.filter(c.index == "test")`` with ``X_test``).
        model, X, y, cn: as for ``DSTorch.predict``.
        by: ``"misclassified"``: the wrong rows, in table order;
            ``"loss"``: every row, highest loss first (confident mistakes,
            then unsure right answers).

    Returns:
        ``df``'s rows with ``target_``, ``prediction_``, ``loss_`` and
        ``title_`` (``"target => prediction"``) added.

    Example:
        >>> misclassified(mnist.filter(c.index == "test"), model, X_test, y_test, cn).height
    """
    if by not in ("misclassified", "loss"):
        raise ValueError(f"by should be 'misclassified' or 'loss'. Got {by!r}.")
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"df should be a polars DataFrame (the table X came from). Got {type(df).__name__}.")
    if y is None:
        raise ValueError("finding mistakes needs the true labels y.")
    if len(df) != len(X):
        raise ValueError(
            f"df has {len(df)} rows but X has {len(X)}: pass the table rows X was built from, in the same "
            "order (e.g. mnist.filter(c.index == 'test') with X_test, or the whole table with X)."
        )
    outputs, targets = collect_outputs(model, X, y, batch_size)
    targets = require_labels(targets)
    codes = predicted_codes(outputs)
    names = np.asarray(cn) if cn is not None else np.arange(max(int(codes.max()), int(targets.max())) + 1)
    target_names = [str(v) for v in names[targets.numpy()]]
    prediction_names = [str(v) for v in names[codes.numpy()]]
    table = df.with_columns(
        pl.Series("target_", names[targets.numpy()]),
        pl.Series("prediction_", names[codes.numpy()]),
        pl.Series("loss_", row_losses(outputs, targets).numpy().astype(np.float64)),
        pl.Series("title_", [f"{t} => {p}" for t, p in zip(target_names, prediction_names)]),
    )
    if by == "loss":
        return table.sort("loss_", descending=True, maintain_order=True)
    return table.filter(pl.Series((codes != targets).numpy()))
