"""One-dimensional gradient descent (chapter 13 §13.5), checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dsml import DSTorch
from dsml.inside.descent import chapter_paths, derivatives, gradient_descent, two_minima


def f_numpy(x):
    """two_minima written again in numpy, independent of torch and autograd."""
    return 3 * np.sqrt(9 + (x + 0.6) ** 2) - 9 - np.exp(-((x - 1) ** 2) / 0.18)


def df_numpy(x, h=1e-6):
    return (f_numpy(x + h) - f_numpy(x - h)) / (2 * h)


def root(lo, hi):
    """A zero of the numeric derivative between lo and hi, by bisection."""
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sign(df_numpy(mid)) == np.sign(df_numpy(lo)) else (lo, mid)
    return (lo + hi) / 2


GLOBAL_MIN, HILL, LOCAL_MIN = root(-1.5, 0.0), root(0.0, 0.6), root(0.6, 1.5)


def test_the_default_curve_has_a_global_and_a_local_minimum_near_1():
    assert GLOBAL_MIN == pytest.approx(-0.6, abs=1e-3)
    assert 0.8 < LOCAL_MIN < 1.1
    assert f_numpy(GLOBAL_MIN) < f_numpy(LOCAL_MIN) < f_numpy(HILL)


def test_derivatives_match_finite_differences_and_a_polynomial():
    fx, dfx, d2fx = derivatives(two_minima, 0.3)
    assert fx == pytest.approx(f_numpy(0.3))
    assert dfx == pytest.approx(df_numpy(0.3), abs=1e-6)
    assert d2fx == pytest.approx((df_numpy(0.3 + 1e-4) - df_numpy(0.3 - 1e-4)) / 2e-4, abs=1e-3)
    assert derivatives(lambda x: x**3, 2.0) == pytest.approx((8.0, 12.0, 12.0))


def test_gradient_descent_on_a_parabola_matches_the_closed_form():
    # x_n = 3 + (x0 - 3) * (1 - 2 lr)^n for f(x) = (x - 3)^2
    path = gradient_descent(lambda x: (x - 3) ** 2, x0=0.0, lr=0.1, steps=10)
    expected = 3 + (0 - 3) * 0.8 ** np.arange(11)
    np.testing.assert_allclose(path["x"].to_numpy(), expected, rtol=1e-12)
    assert path.columns == ["step", "x", "fx", "dfx", "path"]
    assert path["step"].to_list() == list(range(11))


def test_momentum_follows_the_chapters_update_rule():
    lr, mu, x, v = 0.05, 0.7, -2.0, 0.0
    expected = [x]
    for _ in range(5):
        v = mu * v - lr * df_numpy(x)
        x = x + v
        expected.append(x)
    path = gradient_descent(method="momentum", lr=lr, momentum=mu, steps=5)
    np.testing.assert_allclose(path["x"].to_numpy(), expected, atol=1e-6)


def test_newton_converges_to_a_stationary_point_quickly():
    path = gradient_descent(method="newton", steps=8)
    x_end = path["x"][-1]
    assert abs(df_numpy(x_end)) < 1e-6
    assert x_end == pytest.approx(GLOBAL_MIN, abs=1e-5)
    assert abs(path["x"][4] - GLOBAL_MIN) < 1e-4  # a handful of steps, not dozens


def test_a_small_learning_rate_converges_slowly_and_steadily():
    x = gradient_descent(lr=0.05, steps=30)["x"].to_numpy()
    distance = np.abs(x - GLOBAL_MIN)
    assert np.all(np.diff(distance) < 0)  # every step gets closer...
    assert distance[-1] > 0.2  # ...but 30 steps are not enough
    assert abs(gradient_descent(lr=0.05, steps=300)["x"][-1] - GLOBAL_MIN) < 1e-3


def test_a_large_learning_rate_bounces_around_the_minimum():
    x = gradient_descent(lr=1.8, steps=30)["x"].to_numpy()
    side = np.sign(x[1:] - GLOBAL_MIN)
    assert np.sum(side[1:] != side[:-1]) >= 10
    assert x.max() < HILL  # it bounces inside the basin, never over the hill


def test_too_much_momentum_ends_in_the_other_minimum():
    fine = gradient_descent(method="momentum", lr=0.05, momentum=0.7, steps=300)["x"][-1]
    too_much = gradient_descent(method="momentum", lr=0.05, momentum=0.95, steps=300)["x"][-1]
    assert fine == pytest.approx(GLOBAL_MIN, abs=1e-3)
    assert too_much == pytest.approx(LOCAL_MIN, abs=1e-2)


def test_chapter_paths_and_their_plot():
    paths = chapter_paths(steps=20)
    assert paths["path"].n_unique() == 5
    fig = DSTorch.plot_gradient_descent(paths)
    assert list(fig.data["path"].cat.categories) == list(dict.fromkeys(paths["path"].to_list()))
    fig.draw()


def test_a_diverging_path_stops_at_the_last_finite_point():
    path = gradient_descent(lambda x: x**2, x0=1.0, lr=5.0, steps=100)
    assert len(path) < 101
    assert path["x"].is_finite().all()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"method": "adam"}, ValueError, "method should be one of"),
        ({"method": "gd", "momentum": 0.9}, ValueError, "only applies to method='momentum'"),
        ({"method": "momentum", "momentum": 1.0}, ValueError, r"momentum should be in \[0, 1\)"),
        ({"lr": 0}, ValueError, "lr should be a positive number"),
        ({"steps": -1}, ValueError, "steps should be a whole number"),
        ({"f": lambda x: math.exp(x)}, TypeError, "torch operations"),
        ({"f": lambda x: np.exp(x.detach().numpy())}, TypeError, "torch operations"),
        ({"f": lambda x: torch.stack([x, x])}, ValueError, "one number"),
    ],
)
@pytest.mark.filterwarnings("ignore:Converting a tensor")  # math.exp(tensor) warns before dsml explains
def test_mistakes_are_explained(kwargs, error, message):
    with pytest.raises(error, match=message):
        gradient_descent(**kwargs)


def test_newton_stops_with_a_message_where_the_curve_is_flat():
    with pytest.raises(ValueError, match="f''"):
        gradient_descent(lambda x: x * 1.0, method="newton")
