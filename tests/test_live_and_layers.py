"""Training made visible: the live curve in a real Jupyter kernel, layer health, the one-cycle schedule (issue 9)."""

from __future__ import annotations

import os
import queue

import pytest
import torch
from torch import nn, optim
from torch.nn import functional as F

from conftest import ROOT
from dsml import DSTorch


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(48, 5, generator=g)
    y = torch.randint(0, 3, (48,), generator=g)
    return X, y


def test_layer_statistics_match_a_hand_computation(data):
    """With lr=0 and one batch per epoch, every epoch sees the same weights: compare with autograd directly."""
    X, y = data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].bias[:2] = -100.0  # units 0 and 1 never fire: half the ReLU units are dead
    history = DSTorch.train(model, optim.SGD(model.parameters(), lr=0.0), X, y, num_epochs=2, batch_size=48,
                            verbose=False, track="layers")  # fmt: skip
    hidden = model[0](X)
    loss = F.cross_entropy(model(X), y)
    grads = torch.autograd.grad(loss, [model[0].weight, model[0].bias, model[2].weight, model[2].bias])
    want_norms = [
        torch.cat([grads[0].reshape(-1), grads[1]]).norm(),
        torch.cat([grads[2].reshape(-1), grads[3]]).norm(),
    ]
    table = history.layers.filter(epoch=2)
    assert table["layer"].to_list() == ["0", "1", "2"]
    first, relu, last = table.rows(named=True)
    assert first["grad_norm"] == pytest.approx(float(want_norms[0]), rel=1e-5)
    assert last["grad_norm"] == pytest.approx(float(want_norms[1]), rel=1e-5)
    assert first["act_mean"] == pytest.approx(float(hidden.mean()), rel=1e-5)
    assert first["act_std"] == pytest.approx(float(hidden.std(unbiased=False)), rel=1e-4)
    assert relu["grad_norm"] is None and relu["dead_share"] == pytest.approx(
        float((torch.relu(hidden) == 0).all(dim=0).float().mean())
    )
    assert relu["dead_share"] >= 0.5
    assert len(history.layers) == 6  # 3 layers x 2 epochs; validation passes are not counted


def test_plot_layers_draws_and_says_when_nothing_was_tracked(data, tmp_path):
    X, y = data
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    history = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=2, verbose=False, track="layers")
    DSTorch.plot_layers(history).save(tmp_path / "layers.png", verbose=False)
    assert (tmp_path / "layers.png").stat().st_size > 1000
    untracked = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=1, verbose=False)
    with pytest.raises(ValueError, match="this history has no layer statistics: train with track='layers'"):
        DSTorch.plot_layers(untracked)


def test_track_accepts_only_known_names(data):
    X, y = data
    model = nn.Linear(5, 3)
    with pytest.raises(ValueError, match="track should be one of 'layers'. Got 'gradients'."):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, track="gradients")


def test_the_one_cycle_schedule_steps_every_batch(data):
    X, y = data  # 48 rows in batches of 16: 3 batches per epoch
    model = nn.Linear(5, 3)
    history = DSTorch.train(model, optim.SGD(model.parameters(), lr=0.1), X, y, num_epochs=4, batch_size=16,
                            verbose=False, schedule="onecycle")  # fmt: skip
    reference = optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = optim.lr_scheduler.OneCycleLR(reference, max_lr=0.1, total_steps=12)
    want = []
    for step in range(12):
        if step % 3 == 0:
            want.append(reference.param_groups[0]["lr"])
        reference.step()
        scheduler.step()
    assert history.df["lr"].to_list() == pytest.approx(want)
    assert want[0] == pytest.approx(0.1 / 25)


def test_a_schedule_and_a_scheduler_together_are_refused(data):
    X, y = data
    model = nn.Linear(5, 3)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="pass either schedule='onecycle' or a scheduler object, not both"):
        DSTorch.train(model, optimizer, X, y, schedule="onecycle", scheduler=optim.lr_scheduler.StepLR(optimizer, 1))


def test_plot_outside_jupyter_says_so_and_prints_the_lines(data, capsys):
    X, y = data
    model = nn.Linear(5, 3)
    with pytest.warns(UserWarning, match="plot=True draws a live training curve in Jupyter only"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=2, plot=True)
    assert capsys.readouterr().out.count("Epoch ") == 2


@pytest.mark.slow
def test_the_live_curve_is_one_display_updated_each_epoch():
    """In a real kernel: one display_data with a PNG, then one update_display_data per later epoch, same id."""
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(ROOT), env=env)
    try:
        code = (
            "import torch\nfrom torch import nn, optim\nfrom dsml import DSTorch\n"
            "X, y = torch.randn(60, 4), torch.arange(60) % 3\nmodel = nn.Linear(4, 3)\n"
            "h = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=3, plot=True,\n"
            "                  X_valid=X[:20], y_valid=y[:20])\n"
        )
        msg_id = client.execute(code)
        messages = []
        while True:
            msg = client.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = client.get_shell_msg(timeout=60)
    except queue.Empty:  # pragma: no cover - a hung kernel
        pytest.fail("the kernel did not answer")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    kinds = [m["msg_type"] for m in messages]
    shown = [m for m in messages if m["msg_type"] == "display_data"]
    updates = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert len(shown) == 1 and len(updates) == 2, kinds
    ids = {m["content"]["transient"]["display_id"] for m in shown + updates}
    assert len(ids) == 1
    assert all("image/png" in m["content"]["data"] for m in shown + updates)
    text = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert text.count("Epoch ") == 3
