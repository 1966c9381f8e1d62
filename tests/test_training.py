"""DSTorch.train: the book's printed lines, a correct loss, and what it grew (issue 2 and 4)."""

from __future__ import annotations

import math
import os
import pickle
import re
import signal

import pytest
import torch
from torch import nn, optim
from torch.nn import functional as F

from dsml import DenseNet, DSTorch, SimpleCNN
from dsml.train.callbacks import Callback


@pytest.fixture
def blobs():
    """Three well separated classes in 4 dimensions: 120 train, 60 validation rows."""
    g = torch.Generator().manual_seed(3)
    centres = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    y = torch.arange(180) % 3
    X = centres[y] + torch.randn(180, 4, generator=g)
    return X[:120], y[:120], X[120:], y[120:]


def small_net(outputs=3):
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, outputs))


def test_the_books_call_prints_the_books_lines(blobs, capsys):
    X, y, _, _ = blobs
    model = small_net()
    history = DSTorch.train(model, optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=5, batch_size=64)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert all(re.fullmatch(rf"Epoch {i}/5, Loss: \d+\.\d{{4}}", line) for i, line in enumerate(lines, 1))
    assert [f"{r['loss']:.4f}" for r in history] == [line.split("Loss: ")[1] for line in lines]
    assert repr(history).count("\n") == 0


def test_the_epoch_loss_is_the_mean_over_rows(blobs):
    X, y, _, _ = blobs
    X = X[:100]  # 100 rows in batches of 32: 32+32+32+4, which the book's n // batch_size got wrong
    y = y[:100]
    model = small_net()
    frozen = optim.SGD(model.parameters(), lr=0.0)  # weights never change, so every batch sees one model
    history = DSTorch.train(model, frozen, X, y, num_epochs=1, batch_size=32, verbose=False)
    with torch.no_grad():
        want = F.cross_entropy(model(X), y).item()
    assert history[0]["loss"] == pytest.approx(want, rel=1e-5)


def test_a_training_set_smaller_than_one_batch(blobs):
    X, y, _, _ = blobs
    model = small_net()
    history = DSTorch.train(
        model, optim.Adam(model.parameters()), X[:5], y[:5], num_epochs=2, batch_size=32, verbose=False
    )
    assert len(history) == 2 and math.isfinite(history[-1]["loss"])


def test_no_training_rows(blobs):
    model = small_net()
    with pytest.raises(ValueError, match="X_train has no rows"):
        DSTorch.train(model, optim.Adam(model.parameters()), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))


def test_X_and_y_of_different_lengths(blobs):
    X, y, _, _ = blobs
    model = small_net()
    with pytest.raises(ValueError, match="X_train has 120 rows but y_train has 119"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y[:-1])


def test_fewer_outputs_than_classes(blobs):
    X, y, _, _ = blobs
    model = small_net(outputs=2)
    with pytest.raises(ValueError, match=r"gives 2 output\(s\) per row but the data has 3 classes"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y)


def test_a_dense_network_given_images_suggests_flatten(grey_table):
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(grey_table)
    model = DenseNet(in_features=30, num_classes=3)
    with pytest.raises(ValueError, match=r"shape \(2, 1, 6, 5\).*flatten=True"):
        DSTorch.train(model, optim.Adam(model.parameters()), X_train, y_train)


def test_a_cnn_given_flat_rows_suggests_flatten_false(grey_table):
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(grey_table, flatten=True)
    model = SimpleCNN(num_classes=3)
    with pytest.raises(ValueError, match=r"shape \(2, 30\).*flatten=False"):
        DSTorch.train(model, optim.Adam(model.parameters()), X_train, y_train)


def test_float_class_codes_are_refused(blobs):
    X, y, _, _ = blobs
    model = small_net()
    with pytest.raises(TypeError, match="needs integer class codes, but y_train is torch.float32"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y.float(), loss="cross_entropy", verbose=False)


def test_explicit_cpu_device(blobs):
    X, y, _, _ = blobs
    model = small_net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=1, device="cpu", verbose=False)
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
def test_asking_for_cuda_without_a_gpu(blobs):
    X, y, _, _ = blobs
    model = small_net()
    with pytest.raises(ValueError, match="no CUDA GPU"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_by_default_when_available(blobs):
    X, y, _, _ = blobs
    model = small_net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=1, verbose=False)
    assert next(model.parameters()).is_cuda
    assert DSTorch.score_image(model, X, y) > 0.3  # X stays on the CPU; batches move


# ---- issue 4: validation, early stopping, seeds, losses, schedules, interrupts, checkpoints ----


def test_validation_columns_every_epoch(blobs, capsys):
    X, y, Xv, yv = blobs
    model = small_net()
    history = DSTorch.train(model, optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=4, X_valid=Xv, y_valid=yv)
    df = history.df
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(df.columns)
    assert df["val_loss"].null_count() == 0 and len(df) == 4
    assert "Val accuracy:" in capsys.readouterr().out


def test_patience_stops_early_and_restores_the_best_weights(blobs):
    X, y, Xv, yv = blobs
    model = small_net()
    # A large learning rate on a tiny set overfits fast, so validation loss turns up early.
    history = DSTorch.train(
        model,
        optim.Adam(model.parameters(), lr=0.05),
        X[:30],
        y[:30],
        num_epochs=200,
        batch_size=8,
        X_valid=Xv,
        y_valid=yv,
        patience=3,
        seed=0,
        verbose=False,
    )
    assert history.stop_reason == "early_stopping" and len(history) < 200
    best = min(r["val_loss"] for r in history)
    assert history[history.best_epoch - 1]["val_loss"] == best
    assert DSTorch.evaluate(model, Xv, yv)["val_loss"] == pytest.approx(best, rel=1e-5)


def test_patience_on_the_shipped_sample(mnist):
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True, flatten=True)
    model = DenseNet()
    history = DSTorch.train(
        model,
        optim.Adam(model.parameters(), lr=0.001),
        X_train,
        y_train,
        num_epochs=100,
        batch_size=64,
        valid_fraction=0.2,
        patience=3,
        seed=1,
        verbose=False,
    )
    assert history.stop_reason == "early_stopping" and len(history) < 100
    assert history.df["val_loss"].min() == history[history.best_epoch - 1]["val_loss"]


def test_valid_fraction_is_stratified_and_disjoint(blobs):
    from dsml.data.splits import stratified_split

    _, y, _, _ = blobs
    train_rows, valid_rows = stratified_split(y, 0.25, seed=4)
    assert set(train_rows.tolist()).isdisjoint(valid_rows.tolist())
    assert sorted(train_rows.tolist() + valid_rows.tolist()) == list(range(len(y)))
    assert torch.bincount(y[valid_rows]).tolist() == [10, 10, 10]
    again = stratified_split(y, 0.25, seed=4)[1]
    assert torch.equal(valid_rows, again)


def test_valid_fraction_never_trains_on_validation_rows(blobs, monkeypatch):
    from dsml.data.splits import stratified_split

    X, y, _, _ = blobs
    X = torch.cat([X, torch.arange(len(X)).float()[:, None]], dim=1)  # the last column is the row number
    seen = set()

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 3)

        def forward(self, x):
            if self.training:
                seen.update(int(v) for v in x[:, -1])
            return self.net(x[:, :4])

    valid_rows = set(stratified_split(y, 0.25, seed=2)[1].tolist())
    model = Spy()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=2, valid_fraction=0.25, seed=2, verbose=False)
    assert seen and seen.isdisjoint(valid_rows) and len(seen) == 90


def test_same_seed_same_history(blobs):
    X, y, Xv, yv = blobs

    def run():
        torch.manual_seed(10)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        h = DSTorch.train(
            model,
            optim.Adam(model.parameters(), lr=0.01),
            X,
            y,
            num_epochs=3,
            X_valid=Xv,
            y_valid=yv,
            seed=7,
            verbose=False,
        )
        return h.df.drop("seconds")

    assert run().equals(run())


def test_binary_loss_for_one_output(blobs):
    X, y, _, _ = blobs
    y = (y == 0).long()
    model = small_net(outputs=1)
    history = DSTorch.train(model, optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=15, verbose=False)
    assert history[-1]["accuracy"] > 0.9
    assert DSTorch.score_image(model, X, y) == pytest.approx(history[-1]["accuracy"], abs=0.05)


def test_regression_for_float_targets(blobs):
    X, _, _, _ = blobs
    target = X @ torch.tensor([1.0, -2.0, 0.5, 0.0])
    model = nn.Linear(4, 1)
    history = DSTorch.train(model, optim.Adam(model.parameters(), lr=0.05), X, target, num_epochs=60, verbose=False)
    assert "rmse" in history[-1] and history[-1]["rmse"] < history[0]["rmse"]
    assert DSTorch.score_image(model, X, target) == pytest.approx(
        torch.sqrt(F.mse_loss(model(X).detach().reshape(-1), target)).item(), rel=1e-4
    )


def test_a_scheduler_is_stepped_every_epoch(blobs):
    X, y, _, _ = blobs
    model = small_net()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = DSTorch.train(model, opt, X, y, num_epochs=3, scheduler=sched, verbose=False)
    assert history.df["lr"].to_list() == pytest.approx([0.1, 0.05, 0.025])


def test_gradient_clipping_bounds_the_update(blobs):
    X, y, _, _ = blobs
    model = small_net()
    before = [p.detach().clone() for p in model.parameters()]
    DSTorch.train(
        model,
        optim.SGD(model.parameters(), lr=1.0),
        X * 1000,
        y,
        num_epochs=1,
        batch_size=200,
        clip_grad_norm=0.01,
        verbose=False,
    )
    step = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert step.item() <= 0.01 + 1e-6


def test_a_huge_learning_rate_stops_with_the_nan_message(blobs, capsys):
    X, y, _, _ = blobs
    model = small_net()
    history = DSTorch.train(model, optim.SGD(model.parameters(), lr=1e12), X * 1e6, y, num_epochs=5)
    out = capsys.readouterr().out
    assert history.stop_reason == "non_finite_loss"
    assert re.search(r"The loss became (nan|inf) in epoch 1, batch \d+.*learning rate \(1e\+12\).*smaller", out)


def test_an_interrupt_mid_epoch_returns_the_history_so_far(blobs, capsys):
    X, y, _, _ = blobs
    calls = {"n": 0}

    class Interrupting(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_net()

        def forward(self, x):
            if self.training:
                calls["n"] += 1
                if calls["n"] == 6:  # the 2nd batch of epoch 2 (4 batches of 32 per epoch)
                    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C or a notebook's stop button does
            return self.net(x)

    model = Interrupting()
    history = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=5, batch_size=32)
    out = capsys.readouterr().out
    assert history.stop_reason == "interrupted" and len(history) == 1
    assert "Training interrupted in epoch 2 after batch 2/4" in out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_raised_keyboard_interrupt_is_caught_too(blobs):
    X, y, _, _ = blobs

    class Raising(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_net()

        def forward(self, x):
            if self.training:
                raise KeyboardInterrupt
            return self.net(x)

    model = Raising()
    history = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=3, verbose=False)
    assert history.stop_reason == "interrupted" and len(history) == 0


def test_no_progress_bar_when_output_is_not_a_terminal(blobs, capsys):
    X, y, _, _ = blobs
    model = small_net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=2)
    captured = capsys.readouterr()
    assert captured.err == "" and len(captured.out.splitlines()) == 2


def test_a_progress_bar_on_request(blobs, capsys):
    X, y, _, _ = blobs
    model = small_net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=2, progress=True)
    captured = capsys.readouterr()
    assert "Epoch 1/2" in captured.err and "batch" in captured.err
    assert len(captured.out.splitlines()) == 2


def test_a_notebook_without_ipywidgets_gets_a_text_bar_and_a_hint(blobs, capsys, monkeypatch):
    """tqdm.auto picks the widget bar in Jupyter; without ipywidgets that bar is stuck at 0%."""
    import builtins
    import sys

    import tqdm.auto
    import tqdm.notebook

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)  # what tqdm.auto gives inside a kernel
    monkeypatch.delitem(sys.modules, "ipywidgets", raising=False)
    real_import = builtins.__import__

    def no_widgets(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError("No module named 'ipywidgets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_widgets)
    model = small_net()
    with pytest.warns(UserWarning, match=r"progress bars in Jupyter need the ipywidgets package.*text progress bar"):
        DSTorch.train(model, optim.Adam(model.parameters()), blobs[0], blobs[1], num_epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "batch" in err  # the text bar drew


def test_save_and_load_round_trip(blobs, tmp_path):
    X, y, _, _ = blobs
    model = small_net()
    DSTorch.train(model, optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=3, verbose=False)
    path = DSTorch.save(model, tmp_path / "m.pt", cn=["a", "b", "c"])
    again = DSTorch.load(small_net(), path)
    assert torch.equal(again(X), model(X))
    from dsml.train.checkpoints import load_classes

    assert load_classes(path) == ["a", "b", "c"]


def test_loading_never_runs_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(ValueError, match="not a weights file dsml can read safely"):
        DSTorch.load(small_net(), path)
    assert not (tmp_path / "pwned").exists()


def test_loading_weights_of_another_network(blobs, tmp_path):
    path = DSTorch.save(small_net(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="do not fit this DenseNet"):
        DSTorch.load(DenseNet(), path)


def test_checkpoint_keeps_the_best_and_resumes(blobs, tmp_path, capsys):
    X, y, Xv, yv = blobs
    path = tmp_path / "ckpt.pt"
    torch.manual_seed(1)
    model = small_net()
    opt = optim.Adam(model.parameters(), lr=0.01)
    first = DSTorch.train(model, opt, X, y, num_epochs=3, X_valid=Xv, y_valid=yv, checkpoint=path, seed=1)
    assert path.exists()
    model2 = small_net()
    opt2 = optim.Adam(model2.parameters(), lr=0.01)
    resumed = DSTorch.train(
        model2, opt2, X, y, num_epochs=5, X_valid=Xv, y_valid=yv, checkpoint=path, resume=True, seed=1
    )
    assert "Resumed from" in capsys.readouterr().out
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4, 5]
    assert resumed.df.head(3).drop("seconds").equals(first.df.drop("seconds"))
    best = DSTorch.load(small_net(), path)  # a checkpoint loads its best weights
    best_loss = DSTorch.evaluate(best, Xv, yv)["val_loss"]
    assert best_loss == pytest.approx(min(r["val_loss"] for r in resumed), rel=1e-5)


@pytest.mark.slow
def test_chapter_13_reaches_the_books_accuracy(mnist, capsys):
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True, flatten=True)
    torch.manual_seed(0)
    model = DenseNet()
    DSTorch.train(model, optim.Adam(model.parameters(), lr=0.001), X_train, y_train, num_epochs=20, batch_size=64)
    assert len(capsys.readouterr().out.splitlines()) == 20
    assert DSTorch.score_image(model, X_train, y_train, cn) >= 0.98
    assert DSTorch.score_image(model, X_test, y_test, cn) >= 0.80


def test_the_move_decision_uses_half_the_free_gpu_memory():
    from dsml.engine.device import fits_on_device

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert fits_on_device(4800, gpu, free_bytes=10_000)
    assert not fits_on_device(4800, gpu, free_bytes=9_000)  # more than half the free memory
    assert not fits_on_device(1, cpu, free_bytes=10**9)  # the CPU: nothing to move


def test_tensors_that_fit_are_moved_to_the_device_once(monkeypatch):
    """The decision is faked (no GPU here): tensors then move in one go, None stays None."""
    from dsml.engine import device as device_module

    monkeypatch.setattr(device_module, "fits_on_device", lambda nbytes, device, free_bytes=None: True)
    X, y = torch.zeros(100, 10), torch.zeros(100, dtype=torch.long)
    moved = device_module.move_if_fits([X, y, None], torch.device("meta"))
    assert [t.device.type for t in moved[:2]] == ["meta", "meta"] and moved[2] is None
    assert moved[0].shape == X.shape and moved[1].dtype == torch.long
    monkeypatch.setattr(device_module, "fits_on_device", lambda nbytes, device, free_bytes=None: False)
    assert device_module.move_if_fits([X, y, None], torch.device("meta"))[0] is X  # too big: batches are copied


def test_train_moves_its_tensors_once_and_copies_no_batch_after(blobs, monkeypatch):
    from dsml.train import loop

    X, y, Xv, yv = blobs
    calls = []

    def spy(tensors, device, free_bytes=None):
        calls.append([None if t is None else tuple(t.shape) for t in tensors])
        return tensors

    monkeypatch.setattr(loop, "move_if_fits", spy)
    model = small_net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=3, X_valid=Xv, y_valid=yv, verbose=False)
    assert calls == [[(120, 4), (120,), (60, 4), (60,)]]  # once per train call, not per epoch or batch


def test_cpu_batches_for_a_gpu_are_gathered_into_pinned_memory():
    """Pinning is decided from the devices; the decision is checked here, the copy itself on a GPU (test_cuda)."""
    from dsml.engine.batches import TensorBatches

    X, y = torch.zeros(10, 3), torch.zeros(10, dtype=torch.long)
    assert TensorBatches(X, y, 4, device=torch.device("cuda"))._pin
    assert not TensorBatches(X, y, 4, device=torch.device("cpu"))._pin
    assert not TensorBatches(X.to("meta"), y.to("meta"), 4, device=torch.device("meta"))._pin


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"shuffle": True}, {"shuffle": True, "drop_single_row": True}, {"sampler": [9, 2, 4, 0, 7]}],
    ids=["in order", "shuffled", "a single-row batch dropped", "a sampler's rows"],
)
def test_a_pass_gives_its_targets_in_the_order_of_its_batches(kwargs):
    from dsml.engine.batches import TensorBatches

    X, y = torch.arange(11.0).reshape(11, 1), torch.arange(11) * 10
    batches = TensorBatches(X, y, 5, generator=torch.Generator().manual_seed(3), **kwargs)
    assert batches.pass_targets() is None  # before the first pass
    for _ in range(2):  # each pass its own order
        yielded = torch.cat([yb for _, yb in batches])
        assert torch.equal(batches.pass_targets(), yielded)
    assert len(yielded) == (10 if "drop_single_row" in kwargs else 5 if "sampler" in kwargs else 11)
    assert TensorBatches(X, None, 5).pass_targets() is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_move_if_fits_moves_small_tensors_to_the_gpu():
    from dsml.engine.device import move_if_fits

    X, y = torch.zeros(100, 10), torch.zeros(100, dtype=torch.long)
    moved = move_if_fits([X, y, None], torch.device("cuda"))
    assert moved[0].is_cuda and moved[1].is_cuda and moved[2] is None


@pytest.mark.parametrize(
    "codes",
    [lambda y: y.int(), lambda y: y.numpy().astype("int32"), lambda y: y.numpy(), lambda y: y.tolist()],
    ids=["int32 tensor", "int32 numpy", "int64 numpy", "list"],
)
def test_int32_and_numpy_class_codes_train_exactly_as_int64_codes(blobs, codes):
    """Class codes as int32, numpy arrays or lists give the same run, number for number, as int64 codes."""
    X, y, Xv, yv = blobs

    def run(y_train, y_valid):
        torch.manual_seed(0)
        model = small_net()
        history = DSTorch.train(
            model, optim.Adam(model.parameters()), X, y_train, num_epochs=2, X_valid=Xv, y_valid=y_valid,
            seed=3, verbose=False,
        )  # fmt: skip
        return history, model

    reference, ref_model = run(y, yv)
    history, model = run(codes(y), codes(yv))
    drop_seconds = [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    assert drop_seconds == [{k: v for k, v in r.items() if k != "seconds"} for r in reference]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()))
    assert DSTorch.score_image(model, Xv, codes(yv)) == DSTorch.score_image(ref_model, Xv, yv)


def test_one_output_with_three_classes(blobs):
    X, y, _, _ = blobs
    model = small_net(outputs=1)
    with pytest.raises(ValueError, match="1 output per row.*codes up to 2.*nn.Linear\\(..., 3\\)"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y)


def test_a_dataset_with_codes_beyond_the_outputs(blobs):
    from torch.utils.data import TensorDataset

    X, y, _, _ = blobs
    model = small_net(outputs=2)
    with pytest.raises(ValueError, match="class code 2, but the model gives outputs for codes 0 to 1 only"):
        DSTorch.train(model, optim.Adam(model.parameters()), TensorDataset(X, y), verbose=False)


def test_an_empty_validation_set(blobs):
    X, y, Xv, yv = blobs
    model = small_net()
    with pytest.raises(ValueError, match="X_valid has no rows"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, X_valid=Xv[:0], y_valid=yv[:0])


def test_evaluate_a_binary_model(blobs):
    X, y, _, _ = blobs
    record = DSTorch.evaluate(small_net(outputs=1), X, (y == 0).long())
    assert set(record) == {"val_loss", "val_accuracy"}


def test_resuming_keeps_the_best_epoch_and_patience(blobs, tmp_path, capsys):
    """A run stopped after epoch 2 and resumed with patience 3 stops after epoch 4, exactly where an uninterrupted
    run stops, and ends with the best (epoch 1) weights, which only the checkpoint still holds."""
    X, y, _, _ = blobs
    X_valid, y_valid = X[:60], (y[:60] + 1) % 3  # labels the model is trained to get wrong: val_loss only rises
    path = tmp_path / "ckpt.pt"
    weights = {}

    class Keep(Callback):
        def on_epoch_end(self, state, record):
            weights[record["epoch"]] = {k: v.clone() for k, v in state.model.state_dict().items()}

    def run(model, num_epochs, **kwargs):
        return DSTorch.train(model, optim.Adam(model.parameters(), lr=0.05), X, y, num_epochs=num_epochs,
                             X_valid=X_valid, y_valid=y_valid, seed=1, verbose=False, **kwargs)  # fmt: skip

    torch.manual_seed(0)
    whole = run(small_net(), 50, patience=3)
    assert whole.stop_reason == "early_stopping" and whole.best_epoch == 1 and len(whole) == 4

    torch.manual_seed(0)
    first = run(small_net(), 2, checkpoint=path, callbacks=[Keep()])
    assert first.best_epoch == 1 and len(first) == 2
    model = small_net()
    resumed = run(model, 50, patience=3, checkpoint=path, resume=True)
    assert len(resumed) == 4 and resumed.stop_reason == "early_stopping"
    assert resumed.best_epoch == 1
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4]
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[1][name]), name  # the best weights came back from the checkpoint


def test_resuming_from_another_network(blobs, tmp_path):
    X, y, Xv, yv = blobs
    path = tmp_path / "ckpt.pt"
    model = small_net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=1, checkpoint=path, verbose=False)
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="does not fit this Sequential"):
        DSTorch.train(other, optim.Adam(other.parameters()), X, y, num_epochs=2, checkpoint=path, resume=True)
