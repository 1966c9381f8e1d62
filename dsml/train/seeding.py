"""One call that seeds every random number generator a training run touches.

``train(seed=...)`` seeds the shuffling, dropout and the validation split, but
a network's initial weights are drawn when it is built, before ``train`` is
called. ``seed_everything`` comes first, before the model is built, so the
same seed gives the same weights and then the same history (like
Lightning's ``seed_everything``).
"""

from __future__ import annotations

import random
import secrets
from typing import Any

import numpy as np
import torch

from dsml._checks import require_int
from dsml.errors import DsmlValueError

MAX_SEED = 2**32 - 1  # numpy's legacy generator takes seeds up to here


def require_seed(seed: Any) -> int:
    """``seed`` checked: a whole number from 0 to 2**32 - 1 (numpy's limit).

    Example:
        >>> require_seed(13)
        13
    """
    seed = require_int(seed, "seed", min=0)
    if seed > MAX_SEED:
        raise DsmlValueError(f"seed should be at most 2**32 - 1 = {MAX_SEED} (numpy's limit). Got {seed}.")
    return seed


def seed_everything(seed: int | None = None) -> int:
    """Seed Python's ``random``, numpy, torch and every CUDA device with one number.

    Call it before building the model: the initial weights, the shuffling,
    dropout and anything numpy or ``random`` draw then repeat from run to
    run on the same machine and versions. (GPU kernels may still differ in
    the last digits; ``torch.use_deterministic_algorithms(True)`` rules that out.)

    Args:
        seed: a whole number from 0 to 2**32 - 1; ``None`` picks one at
            random and returns it, so a run that went well can be repeated.

    Returns:
        The seed used.

    Raises:
        TypeError, ValueError: when ``seed`` is not a whole number in range.

    Example:
        >>> DSTorch.seed(13)
        13
        >>> model = DenseNet()  # the same weights every time the notebook runs
    """
    seed = require_seed(secrets.randbelow(MAX_SEED + 1) if seed is None else seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # the CPU generator, and (lazily) every CUDA device's
    torch.cuda.manual_seed_all(seed)
    return seed
