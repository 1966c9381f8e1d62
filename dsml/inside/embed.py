"""A network's features as a table: ``DSTorch.embed``, and the linear-probe baseline built on them.

The layer before a classifier's last one holds the features the network
learned (seed 002, section 15.8: deep learning is representation learning).
As a polars table, one row per image lined up with the image table, they
feed the earlier chapters' tools unchanged: logistic regression, PCA,
nearest neighbours, clustering. A linear probe (logistic regression on
frozen features) measures how good the features are for a new task: it is
the baseline any fine-tuning should beat.
"""

from __future__ import annotations

import polars as pl
import torch
from torch import nn

from dsml._checks import as_tensor, require_int, require_labels, require_number, require_same_length
from dsml._types import Inputs, Targets
from dsml.engine.evaluation import EVAL_BATCH_SIZE
from dsml.errors import DsmlValueError
from dsml.inside.activations import activations
from dsml.inside.layers import find_layer
from dsml.models.pretrained import PretrainedNet
from dsml.scoring import score
from dsml.train import loop


def feature_layer(model: nn.Module) -> str:
    """The layer ``embed`` reads by default: a ``PretrainedNet``'s body, else the layer before the last ``nn.Linear``.

    "Before" is the order of ``model.named_modules()``; only layers without
    sub-layers count, so for ``SimpleCNN`` it is the ReLU after the first dense layer.
    """
    if isinstance(model, PretrainedNet):
        return "body"
    leaves = [(name, m) for name, m in model.named_modules() if name and not list(m.children())]
    last = max((i for i, (_, m) in enumerate(leaves) if isinstance(m, nn.Linear)), default=None)
    if last is None or last == 0:
        raise DsmlValueError(
            f"this {type(model).__name__} has no layer before a final nn.Linear, so dsml cannot tell where its "
            "features are. Pass layer='...' (see DSTorch.summary for the names)."
        )
    return leaves[last - 1][0]


def embed(
    model: nn.Module, X: Inputs, layer: str | nn.Module | None = None, batch_size: int = EVAL_BATCH_SIZE
) -> pl.DataFrame:
    """The features a network computes for each row of ``X``, as a table of columns ``e0 ... e{K-1}``.

    Args:
        model: a trained network, e.g. ``DSTorch.pretrained(...)``.
        X: images (a tensor or a ``Dataset``), the same ``X`` the model takes.
        layer: a dotted layer name or the layer; its output, flattened, is the
            embedding. Default: a ``PretrainedNet``'s body (the head's input),
            else the layer just before the model's last ``nn.Linear``.
        batch_size: rows per forward pass.

    Returns:
        A polars DataFrame with one float column per feature and one row per
        row of ``X``, in order, so ``table.hstack(embed(model, X))`` lines the
        features up with the images.

    Example:
        >>> features = DSTorch.embed(model, X)              # X from load_image(mnist, scale=True)
        >>> mnist.hstack(features).select("label", "e0", "e1").head()
    """
    name = feature_layer(model) if layer is None else find_layer(model, layer)[0]
    table = activations(model, X, name, batch_size=batch_size)
    return table.select(pl.col(c).alias(f"e{c[1:]}") for c in _units(table))


def _units(table: pl.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("h") and c[1:].isdigit()]


def _features(model, X, y, layer: str, batch_size: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of ``X`` as a float tensor, and the class codes (``y``, or a Dataset's own labels)."""
    table = activations(model, X, layer, batch_size=batch_size)
    Z = torch.tensor(table.select(_units(table)).to_numpy(), dtype=torch.float32)
    if y is None:
        if "label" not in table.columns:
            raise DsmlValueError(f"linear_probe needs y_{name} with the tensor X_{name}.")
        y = torch.tensor([int(v) for v in table["label"]])
    y = require_labels(as_tensor(y, f"y_{name}"), f"y_{name}")
    require_same_length(Z, y, f"X_{name}", f"y_{name}")
    return Z, y


def linear_probe(
    model: nn.Module,
    X_train: Inputs,
    y_train: Targets | None,
    X_test: Inputs,
    y_test: Targets | None,
    layer: str | nn.Module | None = None,
    *,
    num_epochs: int = 100,
    lr: float = 0.01,
    seed: int = 0,
    batch_size: int = EVAL_BATCH_SIZE,
) -> pl.DataFrame:
    """Logistic regression on a network's frozen features: how far do they go on a new task?

    The training rows' embeddings (``embed``) are standardised (each feature
    to mean 0 and standard deviation 1 on the training rows; the test rows get
    the same shift and scale), then one ``nn.Linear`` layer, multinomial
    logistic regression, is trained on them with ``DSTorch.train`` (Adam,
    full-batch up to 512 rows, seeded) and scored on the test rows. The model
    itself does not change.

    Args:
        model: the network whose features are probed.
        X_train, y_train, X_test, y_test: images and class codes (as from
            ``load_image``), or Datasets with ``y_train=y_test=None``.
        layer: the layer whose output is the features (default as in ``embed``).
        num_epochs, lr, seed: of the logistic regression's training.
        batch_size: rows per forward pass when computing the features.

    Returns:
        A one-row table: ``layer``, ``features`` (K), ``train_rows``, ``test_rows``,
        ``train_accuracy``, ``test_accuracy``.

    Example:
        >>> DSTorch.linear_probe(DSTorch.pretrained("small_convnet", 10), X_train, y_train, X_test, y_test)
    """
    num_epochs = require_int(num_epochs, "num_epochs", min=1)
    lr = require_number(lr, "lr", min=0, min_inclusive=False)
    name = feature_layer(model) if layer is None else find_layer(model, layer)[0]
    Z_train, y_train = _features(model, X_train, y_train, name, batch_size, "train")
    Z_test, y_test = _features(model, X_test, y_test, name, batch_size, "test")
    mean, std = Z_train.mean(dim=0), Z_train.std(dim=0, unbiased=False).clamp_min(1e-6)
    Z_train, Z_test = (Z_train - mean) / std, (Z_test - mean) / std
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    with torch.random.fork_rng(devices=[]):  # the probe's seeded start leaves the caller's random state alone
        torch.manual_seed(seed)
        probe = nn.Linear(Z_train.shape[1], num_classes)
        optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
        loop.train(probe, optimizer, Z_train, y_train, num_epochs, min(512, len(Z_train)), seed=seed, verbose=False)
    return pl.DataFrame(
        {
            "layer": [name],
            "features": [Z_train.shape[1]],
            "train_rows": [len(Z_train)],
            "test_rows": [len(Z_test)],
            "train_accuracy": [score(probe, Z_train, y_train)],
            "test_accuracy": [score(probe, Z_test, y_test)],
        }
    )
