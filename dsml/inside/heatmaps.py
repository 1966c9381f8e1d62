"""Which pixels drive a prediction: saliency maps and Grad-CAM (seed 002, §15.5.4 "Interpretation").

Both start from the score of one class, the logit before the softmax, and ask
how it changes:

- **Saliency** (Simonyan, Vedaldi and Zisserman, 2014): the gradient of the
  score with respect to each input pixel; its size (the largest over the
  colour channels) says how much a small change of that pixel moves the score.
- **Grad-CAM** (Selvaraju et al., 2017): at a convolution layer with feature
  maps ``A_k``, weight each map by the average gradient of the score over its
  positions, ``alpha_k = mean(d score / d A_k)``, add the maps up and keep the
  positive part, ``relu(sum_k alpha_k A_k)``: where the layer saw evidence for
  the class. The coarse map is stretched (bilinearly) to the input's size.

Written by hand with a forward hook on the layer and ``tensor.register_hook``
on its output, and gradients taken with ``torch.autograd.grad``, so no
parameter's ``.grad`` is touched and the model's mode is restored.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from dsml._checks import as_tensor, require_choice, require_int
from dsml._types import Targets
from dsml.engine.batches import batches
from dsml.engine.forward import eval_mode, forward, model_device
from dsml.engine.losses import predicted_codes
from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.inside.layers import find_module

HEATMAP_BATCH_SIZE = 64
METHODS = ("grad_cam", "saliency")


def _check_images(X, what: str) -> torch.Tensor:
    X = as_tensor(X, "X")
    if not X.dtype.is_floating_point:
        raise DsmlTypeError(f"{what} needs float inputs (images). Got {X.dtype}.")
    if X.ndim < 2 or len(X) == 0:
        raise DsmlValueError(
            f"{what} needs a batch of inputs (N, ...), e.g. X_test[:8] or X_test[i:i + 1] for one image. "
            f"Got shape {tuple(X.shape)}."
        )
    return X


def target_codes(target: int | Targets | None, outputs: torch.Tensor) -> torch.Tensor:
    """The class whose score to explain, per row: the prediction, one class for all, or one per row."""
    if target is None:
        return predicted_codes(outputs.detach())
    k = 2 if outputs.shape[1] == 1 else outputs.shape[1]
    codes = as_tensor(target, "target").to(outputs.device)
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise DsmlTypeError(f"target should be a class code (int) or one per row. Got {codes.dtype}.")
    if codes.ndim == 0:
        codes = codes.expand(len(outputs))
    if codes.ndim != 1 or len(codes) != len(outputs):
        raise DsmlValueError(
            f"target should be one class code, or one per row of X ({len(outputs)}). Got shape {tuple(codes.shape)}."
        )
    if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= k):
        raise DsmlValueError(
            f"target has class code {int(codes.max())}, but the model scores only {k} classes (0 to {k - 1})."
        )
    return codes.long()


def class_scores(outputs: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Each row's score for its class: the logit (for one output: the logit for class 1, minus it for class 0)."""
    if outputs.shape[1] == 1:
        return torch.where(codes == 1, outputs[:, 0], -outputs[:, 0])
    return outputs.gather(1, codes[:, None])[:, 0]


def _batch_targets(target, start: int, rows: int):
    """The part of a per-row ``target`` that belongs to one batch."""
    if target is None:
        return None
    t = as_tensor(target, "target")
    return t[start : start + rows] if t.ndim == 1 else t


def _explain(model: nn.Module, X: torch.Tensor, module: nn.Module | None, target, batch_size: int):
    """Input gradients (and, with ``module``, its outputs and their gradients) for each batch of ``X``."""
    if target is not None and as_tensor(target, "target").ndim == 1 and len(target) != len(X):
        raise DsmlValueError(f"target has {len(target)} class codes but X has {len(X)} rows: give one per row.")
    seen: dict[str, torch.Tensor] = {}

    def keep_output(mod, inp, out):
        if isinstance(out, torch.Tensor) and out.requires_grad:
            seen["A"] = out
            out.register_hook(lambda grad: seen.__setitem__("dA", grad))

    handle = module.register_forward_hook(keep_output) if module is not None else None
    start = 0
    try:
        with eval_mode(model), torch.enable_grad():
            for xb, _ in batches(X, None, batch_size, device=model_device(model)):
                seen.clear()
                x = xb.detach().requires_grad_(True)  # a graph even when every weight is frozen
                out = forward(model, x)
                codes = target_codes(_batch_targets(target, start, len(xb)), out)
                (dx,) = torch.autograd.grad(class_scores(out, codes).sum(), x)  # fires the hook on A
                yield dx.detach(), seen.get("A"), seen.get("dA")
                start += len(xb)
    finally:
        if handle is not None:
            handle.remove()


def saliency(
    model: nn.Module, X: torch.Tensor, target: int | Targets | None = None, batch_size: int = HEATMAP_BATCH_SIZE
) -> torch.Tensor:
    """How strongly each input pixel moves the class score: ``|d score / d x|``.

    Args:
        model: a trained network.
        X: inputs, ``(N, C, H, W)`` images or any ``(N, ...)`` float rows.
        target: whose score to explain: ``None`` (each row's predicted class),
            one class code for all rows, or one per row (e.g. ``y_test[:8]``).
        batch_size: rows per backward pass.

    Returns:
        A float tensor on the CPU: ``(N, H, W)`` for images (the largest
        absolute gradient over the colour channels), otherwise the absolute
        gradient in ``X``'s own shape. Not rescaled.

    Example:
        >>> saliency(model, X_test[:8]).shape
        torch.Size([8, 28, 28])
    """
    X = _check_images(X, "saliency")
    with contextlib.closing(_explain(model, X, None, target, batch_size)) as steps:
        maps = [dx.abs().amax(dim=1) if dx.ndim == 4 else dx.abs() for dx, _, _ in steps]
    return torch.cat(maps).float().cpu()


def grad_cam(
    model: nn.Module,
    X: torch.Tensor,
    layer: str | nn.Module | None = None,
    target: int | Targets | None = None,
    batch_size: int = HEATMAP_BATCH_SIZE,
) -> torch.Tensor:
    """Grad-CAM heat maps: where a convolution layer saw evidence for the class, at the input's size.

    Args:
        model: a trained convolutional network.
        X: images ``(N, C, H, W)``.
        layer: a layer whose output is feature maps ``(B, K, h, w)``: a dotted
            name (``"features.3"``), the module, or ``None`` for the last
            ``nn.Conv2d`` (the usual choice: the most abstract maps that still
            have positions).
        target: as for ``saliency``.
        batch_size: rows per backward pass.

    Returns:
        A float tensor ``(N, H, W)`` on the CPU, each map divided by its
        maximum so it runs from 0 to 1 (all zeros when the layer saw no
        evidence for the class at all).

    Example:
        >>> grad_cam(model, X_test[:8], "features.3", target=y_test[:8]).shape
        torch.Size([8, 28, 28])
    """
    X = _check_images(X, "grad_cam")
    if X.ndim != 4:
        raise DsmlValueError(
            f"grad_cam needs images (N, C, H, W). Got shape {tuple(X.shape)}; load them with flatten=False."
        )
    if layer is None:
        name, module = find_module(model, None, (nn.Conv2d,), default="last", what="Grad-CAM")
    else:
        name, module = find_module(model, layer)
    maps = []
    with contextlib.closing(_explain(model, X, module, target, batch_size)) as steps:  # the hook goes, also on errors
        for _, A, dA in steps:
            if A is None or dA is None or A.ndim != 4:
                shape = "nothing" if A is None else f"shape {tuple(A.shape)}"
                raise DsmlValueError(
                    f"layer {name!r} gave {shape} on the way to the score; Grad-CAM needs feature maps (B, K, h, w) "
                    "that the prediction depends on. Pick a convolution layer (or the ReLU/pooling after one)."
                )
            alpha = dA.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1): how much each map matters for the class
            cam = torch.relu((alpha * A).sum(dim=1, keepdim=True)).detach()  # (B, 1, h, w)
            cam = F.interpolate(cam, size=X.shape[2:], mode="bilinear", align_corners=False)[:, 0]
            peak = cam.flatten(1).amax(dim=1).clamp(min=torch.finfo(cam.dtype).tiny)
            maps.append(cam / peak[:, None, None])
    return torch.cat(maps).float().cpu()


def first_images(
    X: torch.Tensor, y: Targets | None = None, target: int | Targets | None = None, limit: int = 8
) -> tuple[torch.Tensor, torch.Tensor | None, int | Targets | None]:
    """The first ``limit`` images ``(N, C, H, W)``, with their labels and (one per row) targets, to draw.

    Returns:
        ``(X, y, target)``, each cut to the first ``limit`` rows (``y`` and
        ``target`` stay ``None``, and one class for all rows stays one class).

    Example:
        >>> X8, y8, _ = first_images(X_test, y_test, limit=8)
    """
    limit = require_int(limit, "limit", min=1)
    X = as_tensor(X, "X")[:limit]
    if X.ndim != 4:
        raise DsmlValueError(
            f"plot_heatmaps draws images (N, C, H, W). Got shape {tuple(X.shape)}; load them with flatten=False."
        )
    if target is not None and as_tensor(target, "target").ndim == 1:  # one class per image: keep the drawn ones
        target = as_tensor(target, "target")[:limit]
    return X, None if y is None else as_tensor(y, "y")[:limit], target


def scaled_heatmaps(
    model: nn.Module,
    X: torch.Tensor,
    method: str = "grad_cam",
    layer: str | nn.Module | None = None,
    target: int | Targets | None = None,
) -> torch.Tensor:
    """Grad-CAM or saliency maps, each running from 0 to 1: what ``plot_heatmaps`` lays over the images.

    Args:
        model: a trained network taking images ``(N, C, H, W)``.
        X: the images.
        method: ``"grad_cam"`` (coarse regions, from a convolution layer;
            already 0 to 1) or ``"saliency"`` (pixel by pixel, divided by each
            image's largest value).
        layer: for Grad-CAM (default: the last ``nn.Conv2d``).
        target: as for ``saliency`` (default: each image's prediction).

    Returns:
        A float tensor ``(N, H, W)`` on the CPU.

    Example:
        >>> scaled_heatmaps(model, X_test[:8], "saliency").amax(dim=(1, 2))  # all 1 (or 0 for a blank map)
    """
    method = require_choice(method, "method", METHODS)
    if method == "grad_cam":
        return grad_cam(model, X, layer, target)
    heat = saliency(model, X, target)
    return heat / heat.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]
