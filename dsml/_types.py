"""The types dsml's hints name: what a function takes as ``X``, ``y`` and ``cn``, a path, a device, a loss,
a scheduler, and what a plot returns.

Layer 0, like the other private helpers: it imports only torch, numpy and the standard library (plotnine
only for a type checker). Every module uses ``from __future__ import annotations``, so a hint is never
evaluated and these names cost nothing at run time.

``Inputs`` says a tensor or a ``Dataset``, not "anything ``torch.as_tensor`` takes". The checks do convert a
list or a numpy array (``dsml._checks.as_tensor``), but an array of numpy's default float64 then meets a
model's float32 weights and fails with a dtype error (which ``dsml.engine.forward`` explains): arrays are
tolerated, not promised. Targets are different: ``require_targets`` turns class codes of any integer type
into int64 and keeps floats as they are, so a list or an array of targets works, and ``Targets`` says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from torch.utils.data import Dataset

if TYPE_CHECKING:
    import plotnine

# X: a tensor whose first dimension is rows, or a Dataset of (x, y) pairs with a len() (image_dataset's)
Inputs: TypeAlias = torch.Tensor | Dataset
# y: one class code (int) or number (float) per row, as a tensor, a numpy array or a list; None where optional
Targets: TypeAlias = torch.Tensor | np.ndarray | Sequence[int] | Sequence[float]
# cn: the class names in code order (cn[y[i]] is row i's label): text, whole numbers or booleans
ClassNames: TypeAlias = np.ndarray | Sequence[str | int | float]
# a file or folder: a string or a pathlib.Path (any os.PathLike of str)
PathLike: TypeAlias = str | os.PathLike[str]
# where a model runs: "cpu", "cuda", "cuda:1", or a torch.device
DeviceLike: TypeAlias = str | torch.device
# what every plot function returns: a plotnine figure, not yet drawn or saved
Figure: TypeAlias = "plotnine.ggplot"
# a loss function: (outputs, targets) -> a 0-d loss tensor; a torch.nn loss such as nn.L1Loss() is one
LossFunction: TypeAlias = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# the loss argument: a name ("cross_entropy", "binary", "mse") or a loss function
LossLike: TypeAlias = str | LossFunction
# a learning-rate scheduler: one of torch.optim.lr_scheduler's (ReduceLROnPlateau is given the loss)
Scheduler: TypeAlias = LRScheduler | ReduceLROnPlateau
