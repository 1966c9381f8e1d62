"""Gradient descent on a one-dimensional function, as in chapter 13 §13.5.

The chapter starts near x = -2 on a bumpy curve and compares Newton's
method, gradient descent with a small and a large learning rate, momentum,
and too much momentum (which carries the point over the hill into the
other minimum, near x = 1). ``gradient_descent`` returns each path as a
table; derivatives come from ``torch.autograd``, so any function built from
torch operations works. ``curve`` samples the function under the paths, and
``plots.plot_gradient_descent`` draws both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeAlias

import polars as pl
import torch

from dsml._checks import require_columns, require_int
from dsml.errors import DsmlTypeError, DsmlValueError

METHODS = ("gd", "momentum", "newton")
MAX_ABS_X = 1e6  # a path beyond this has diverged; stop it there rather than fill the table with inf
# a curve to descend: a function of a 0-d tensor made of torch operations (autograd differentiates it)
Curve: TypeAlias = Callable[[torch.Tensor], torch.Tensor]


def two_minima(x: torch.Tensor) -> torch.Tensor:
    """The chapter-style curve: a global minimum at x = -0.6 and a local one near x = 0.87.

    ``f(x) = 3 * sqrt(9 + (x + 0.6)**2) - 9 - exp(-(x - 1)**2 / 0.18)``: a
    smooth bowl around -0.6 (curvature 1 at the bottom) with a dip near 1.
    The hill between them is at x = 0.41.

    Example:
        >>> two_minima(torch.tensor(-0.6))
        tensor(-6.6584e-07)
    """
    return 3 * torch.sqrt(9 + (x + 0.6) ** 2) - 9 - torch.exp(-((x - 1) ** 2) / 0.18)


def derivatives(f: Curve, x: float, order: int = 2) -> tuple[float, float, float | None]:
    """``f(x)``, ``f'(x)`` and (for ``order=2``) ``f''(x)``, by ``torch.autograd`` in float64.

    Example:
        >>> derivatives(lambda x: x**3, 2.0)
        (8.0, 12.0, 12.0)
    """
    xt = torch.tensor(float(x), dtype=torch.float64, requires_grad=True)
    try:
        y = f(xt)
    except TypeError as err:
        raise DsmlTypeError(
            f"f should take and return a torch tensor, using torch operations (torch.exp, not math.exp "
            f"or np.exp). Calling it on tensor({x}) failed: {err}"
        ) from None
    if not isinstance(y, torch.Tensor):
        raise DsmlTypeError(
            f"f should return a torch tensor built with torch operations (torch.exp, not math.exp "
            f"or np.exp), so autograd can differentiate it. Got {type(y).__name__}."
        )
    if y.numel() != 1:
        raise DsmlValueError(
            f"f should return one number (a scalar tensor) for a scalar x. Got a tensor of shape {tuple(y.shape)}."
        )
    y = y.reshape(())
    if not y.requires_grad:
        raise DsmlValueError(
            "f's result does not depend on x through torch operations, so it has no derivative. "
            "Build f from torch functions (torch.exp, torch.sin, ...)."
        )
    (g,) = torch.autograd.grad(y, xt, create_graph=order >= 2)
    h = None
    if order >= 2:
        h = float(torch.autograd.grad(g, xt)[0]) if g.requires_grad else 0.0
    return float(y.detach()), float(g.detach()), h


def _label(method: str, lr: float, momentum: float) -> str:
    if method == "newton":
        return "Newton's method"
    if method == "momentum":
        return f"momentum {momentum:g}, lr {lr:g}"
    return f"gradient descent, lr {lr:g}"


def gradient_descent(
    f: Curve | None = None,
    x0: float = -2.0,
    method: str = "gd",
    lr: float = 0.05,
    momentum: float | None = None,
    steps: int = 30,
    label: str | None = None,
) -> pl.DataFrame:
    """Follow one minimisation method from ``x0`` and return its path.

    Updates (chapter 13 §13.5):
        - ``"gd"``: ``x <- x - lr * f'(x)``
        - ``"momentum"``: ``v <- momentum * v - lr * f'(x); x <- x + v``
        - ``"newton"``: ``x <- x - f'(x) / f''(x)`` (jump to the bottom of the
          quadratic approximation; ``lr`` is not used)

    Args:
        f: a function of one tensor built from torch operations; default
            ``two_minima``, the chapter-style curve.
        x0: the starting point.
        method: ``"gd"``, ``"momentum"`` or ``"newton"``.
        lr: the learning rate (eta).
        momentum: the momentum factor (mu) for ``method="momentum"``; default 0.5.
        steps: number of updates (a diverging path stops early).
        label: names the path in the table and the plot; default e.g.
            ``"gradient descent, lr 0.05"``.

    Returns:
        A DataFrame with ``step`` (0 = the start), ``x``, ``fx``, ``dfx`` (the
        derivative at x) and ``path`` (the label), one row per point.

    Example:
        >>> gradient_descent(method="momentum", lr=0.05, momentum=0.95).tail(1)  # ends near x = 0.87
    """
    if method not in METHODS:
        raise DsmlValueError(f"method should be one of {', '.join(repr(m) for m in METHODS)}. Got {method!r}.")
    if momentum is not None and method != "momentum":
        raise DsmlValueError(f"momentum={momentum} only applies to method='momentum' (got method={method!r}).")
    momentum = 0.5 if momentum is None else float(momentum)
    if not 0 <= momentum < 1:
        raise DsmlValueError(f"momentum should be in [0, 1). Got {momentum}.")
    if method != "newton" and not lr > 0:
        raise DsmlValueError(f"lr should be a positive number. Got {lr!r}.")
    if not isinstance(steps, int) or steps < 0:
        raise DsmlValueError(f"steps should be a whole number >= 0. Got {steps!r}.")
    f = two_minima if f is None else f
    order = 2 if method == "newton" else 1
    x, v = float(x0), 0.0
    rows = []
    for step in range(steps + 1):
        fx, dfx, d2fx = derivatives(f, x, order)
        rows.append((step, x, fx, dfx))
        if step == steps:
            break
        if method == "newton":
            if d2fx == 0:
                raise DsmlValueError(
                    f"Newton's method cannot continue at step {step}: f''({x:g}) = 0, "
                    "so the quadratic approximation has no minimum."
                )
            x = x - dfx / d2fx
        elif method == "momentum":
            v = momentum * v - lr * dfx
            x = x + v
        else:
            x = x - lr * dfx
        if not math.isfinite(x) or abs(x) > MAX_ABS_X:
            break  # diverged: the table ends at the last finite point
    step, xs, fxs, dfxs = zip(*rows)
    return pl.DataFrame(
        {
            "step": list(step),
            "x": list(xs),
            "fx": list(fxs),
            "dfx": list(dfxs),
            "path": [label or _label(method, lr, momentum)] * len(rows),
        }
    )


def chapter_paths(f: Curve | None = None, x0: float = -2.0, steps: int = 30) -> pl.DataFrame:
    """The chapter's five paths on the default curve, stacked in one table.

    Newton's method; gradient descent with a small (0.05) and a large (1.8)
    learning rate; momentum 0.7; too much momentum (0.95, which ends in the
    other minimum near x = 0.87). The settings suit ``two_minima``; for
    another ``f`` call ``gradient_descent`` with your own.

    Example:
        >>> DSTorch.plot_gradient_descent(chapter_paths())
    """
    return pl.concat(
        [
            gradient_descent(f, x0, "newton", steps=min(steps, 8)),
            gradient_descent(f, x0, "gd", lr=0.05, steps=steps, label="small learning rate (0.05)"),
            gradient_descent(f, x0, "gd", lr=1.8, steps=steps, label="large learning rate (1.8)"),
            gradient_descent(f, x0, "momentum", lr=0.05, momentum=0.7, steps=steps, label="momentum 0.7 (lr 0.05)"),
            gradient_descent(
                f, x0, "momentum", lr=0.05, momentum=0.95, steps=steps, label="too much momentum: 0.95 (lr 0.05)"
            ),
        ]
    )


def curve(paths: pl.DataFrame | list[pl.DataFrame], f: Curve | None = None, points: int = 400) -> pl.DataFrame:
    """The function the paths follow, sampled over their range widened by a tenth on each side.

    For the default ``two_minima`` the range always takes in both minima, so
    a path that stays in one still shows the other.

    Args:
        paths: a table from ``gradient_descent`` or ``chapter_paths`` (its
            ``x`` sets the range), or a list of them.
        f: the function, built from torch operations (default ``two_minima``).
        points: how many points, evenly spaced.

    Returns:
        A DataFrame with ``x`` and ``fx``, one row per point, in float64.

    Example:
        >>> curve(chapter_paths()).height
        400
    """
    if isinstance(paths, (list, tuple)):
        paths = pl.concat(list(paths))
    require_columns(paths, ["x"], what="the descent table", hint="the table gradient_descent returns")
    points = require_int(points, "points", min=2)
    f = two_minima if f is None else f
    lo, hi = float(paths["x"].min()), float(paths["x"].max())
    if f is two_minima:  # always show both minima of the chapter's curve
        lo, hi = min(lo, -2.5), max(hi, 1.75)
    margin = 0.1 * (hi - lo) or 1.0
    xs = torch.linspace(lo - margin, hi + margin, points, dtype=torch.float64)
    with torch.no_grad():
        ys = torch.stack([f(x).reshape(()) for x in xs])
    return pl.DataFrame({"x": xs.numpy(), "fx": ys.double().numpy()})
