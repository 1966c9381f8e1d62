"""What one layer outputs for every row: the latent space as a table, or its principal components."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import nn

from dsml._checks import as_tensor, require_labels, require_same_length
from dsml._types import ClassNames, Inputs, Targets
from dsml.engine.batches import is_dataset
from dsml.engine.evaluation import EVAL_BATCH_SIZE, iter_outputs
from dsml.errors import DsmlValueError
from dsml.inside.layers import find_layer


def _capture(model: nn.Module, module: nn.Module, name: str, X, batch_size: int):
    """``module``'s outputs ``(N, units)`` on the CPU for every row of ``X``, and any labels a Dataset held."""
    chunks, labels = [], []
    for batch in iter_outputs(model, X, None, batch_size, layer=module, layer_name=name):
        chunks.append(batch.captured.float().cpu())  # a layer called twice: its last call feeds what follows
        if batch.targets is not None:
            labels.append(batch.targets.cpu())
    if not chunks:
        raise DsmlValueError("X has no rows, so there are no activations.")
    return torch.cat(chunks), (torch.cat(labels) if labels else None)


def principal_components(Z: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` principal-component scores of the rows of ``Z`` (centred, by SVD, float64).

    Signs are fixed so that each component's largest loading is positive,
    which makes the result repeatable.
    """
    Z = Z.double()
    if not 1 <= k <= min(Z.shape):
        raise DsmlValueError(
            f"components should be between 1 and {min(Z.shape)} (rows {Z.shape[0]}, units {Z.shape[1]}). Got {k}."
        )
    Zc = Z - Z.mean(dim=0)
    U, S, Vh = torch.linalg.svd(Zc, full_matrices=False)
    signs = torch.sign(Vh[:k].gather(1, Vh[:k].abs().argmax(dim=1, keepdim=True))).squeeze(1)
    signs[signs == 0] = 1
    return U[:, :k] * S[:k] * signs


def activations(
    model: nn.Module,
    X: Inputs,
    layer: str | nn.Module,
    y: Targets | None = None,
    cn: ClassNames | None = None,
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
