"""Seeded, stratified splits of training rows."""

from __future__ import annotations

import torch

from dsml._types import Targets
from dsml.errors import DsmlValueError


def stratified_split(y: Targets, fraction: float, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split row numbers into kept and held-out rows, class by class.

    Each class gives ``round(fraction * its rows)`` rows to the held-out part
    (at least one when it has two or more rows), so class proportions match.
    Float targets (regression) are split at random instead.

    Returns:
        ``(train_rows, valid_rows)``: sorted int64 row numbers, disjoint, covering every row.

    Example:
        >>> train_rows, valid_rows = stratified_split(y_train, 0.2, seed=1)
    """
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise DsmlValueError(f"valid_fraction should be a number between 0 and 1, e.g. 0.2. Got {fraction!r}.")
    y = torch.as_tensor(y)
    generator = torch.Generator().manual_seed(0 if seed is None else seed)
    groups = (
        [torch.arange(len(y))]
        if y.dtype.is_floating_point
        else [(y == c).nonzero().reshape(-1) for c in torch.unique(y)]
    )
    held = []
    for rows in groups:
        k = round(fraction * len(rows))
        if len(rows) >= 2:
            k = min(max(k, 1), len(rows) - 1)
        held.append(rows[torch.randperm(len(rows), generator=generator)[:k]])
    valid = torch.cat(held).sort().values
    keep = torch.ones(len(y), dtype=torch.bool)  # pragma: no mutate (equivalent: 0/1 floats mask the same)
    keep[valid] = False
    if not keep.any() or len(valid) == 0:
        raise DsmlValueError(
            f"valid_fraction={fraction} leaves no rows for training or for validation ({len(y)} rows)."
        )
    return keep.nonzero().reshape(-1), valid
