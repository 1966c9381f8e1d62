"""On a CUDA GPU: ``train``, ``score_image`` and ``amp=True`` against hand-written CUDA code, and ``torch.compile``.

Every contender runs in this process, side by side with its baseline on the same tensors (round-robin,
medians of per-round ratios; ``_common``), each timed call between two ``torch.cuda.synchronize()``
(``_gpu.synced``). Data: the shipped Fashion-MNIST images (7,500 train, 2,500 test, scaled; flattened
for the DenseNet) and the shipped 1,000 MNIST digits repeated to 60,000 for scoring.

Sections (``--sections``):

- train: chapter 13's DenseNet and chapter 14's SimpleCNN, ``DSTorch.train`` against the bare CUDA
  loop (data moved to the GPU once, a fresh permutation per epoch, ``loss.item()`` per batch) and
  against the same loop summing the loss on the GPU (no sync per batch). Goal: dsml <= 1.0x the bare loop.
- score: 60,000 digits through a SimpleCNN, ``DSTorch.score_image`` (batches of 512) against the
  whole tensor through the model at once, with ``X`` on the CPU and on the GPU: time and peak GPU
  memory. Goal: <= 1.0x the time and a small fraction of the memory.
- amp: SimpleCNN trained with ``amp=True`` (float16 and a GradScaler on CUDA, bfloat16 on the CPU)
  against float32: time and test accuracy (goal: within 0.02).
- compile: the bare loop with ``torch.compile(model)`` and with ``mode="reduce-overhead"`` (CUDA graphs,
  GPU only) against the eager bare loop, and ``DSTorch.train(torch.compile(model), ...)`` against the
  eager ``DSTorch.train``, warm (the first call, which compiles, is shown apart): whether an opt-in
  ``compile=True`` in train would win.

Without a GPU (and without ``--device cpu``) it prints one "skipped" line and exits with status 0.
``--device cpu --quick`` runs every section on tiny data, to check the script itself (timings meaningless).

Run: ``python -m benchmarks.bench_gpu [--device cuda] [--quick] [--repeats 5] [--markdown FILE]`` from
the project root, or ``python -m benchmarks gpu``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import torch
from torch import nn, optim
from torch.nn import functional as F

from benchmarks._common import add_common_args, apply_common_args, print_table, side_by_side, time_table
from benchmarks._gpu import (
    BARE,
    describe,
    device_name,
    markdown_summary,
    peak_gpu_mb,
    skip_reason,
    summary_rows,
    synced,
)
from benchmarks.bench_train import BATCH_SIZE, LR, SEED, quiet
from dsml import DenseNet, DSTorch, SimpleCNN

SECTIONS = ("train", "score", "amp", "compile")


def bare_loop(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    num_epochs: int,
    device: torch.device,
    *,
    sync_free: bool = False,
    cuda_graphs: bool = False,
) -> float:
    """The loop a PyTorch user writes for a GPU: model and data moved once, a new permutation each epoch.

    With ``sync_free`` the epoch's loss is summed on the device and read once per epoch (no wait for
    the GPU after every batch). ``cuda_graphs``: the model was compiled with ``mode="reduce-overhead"``,
    which wants each step marked. Returns the last epoch's mean loss.
    """
    model.to(device)
    optimizer = optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(SEED)  # the shuffles dsml's seed=SEED draws
    X, y = X.to(device), y.to(device)
    step_begin = getattr(torch.compiler, "cudagraph_mark_step_begin", None) if cuda_graphs else None
    model.train()
    for epoch in range(1, num_epochs + 1):
        perm = torch.randperm(len(X), generator=generator).to(device)
        total = torch.zeros((), dtype=torch.float64, device=device) if sync_free else 0.0
        for start in range(0, len(X), BATCH_SIZE):
            rows = perm[start : start + BATCH_SIZE]
            xb, yb = X[rows], y[rows]
            if step_begin is not None:
                step_begin()  # a new step: the graphs may reuse the memory of the last step's outputs
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += (loss.detach() if sync_free else loss.item()) * len(rows)
        mean = float(total) / len(X)
        print(f"Epoch {epoch}/{num_epochs}, Loss: {mean:.4f}")
    return mean


def dsml_train(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, num_epochs: int, device: torch.device, *, progress=False
) -> float:
    optimizer = optim.Adam(model.parameters(), lr=LR)
    history = DSTorch.train(model, optimizer, X, y, num_epochs, BATCH_SIZE, device=device, seed=SEED, progress=progress)
    return history.records[-1]["loss"]


def quietly(fn: Callable, model: nn.Module, *args, **kwargs) -> Callable[[], float]:
    """A contender: ``fn`` on a fresh copy of ``model`` (the same initial weights every call), printing to /dev/null."""

    def go():
        with quiet():
            return fn(copy.deepcopy(model), *args, **kwargs)

    return go


def check_same_work(losses: dict[str, float], device: torch.device) -> str:
    """dsml and the bare loop shuffle alike, so they end with the same loss (exactly on the CPU; the GPU's
    convolution gradients may add up in another order). A warning, not an error, on the GPU."""
    bare, ours = losses[BARE], losses["dsml train"]
    if abs(bare - ours) <= 1e-6:
        return f"same final loss {ours:.4f} for dsml and the bare loop"
    if device.type == "cpu":
        raise AssertionError(f"dsml and the bare loop did different work: final loss {ours} vs {bare}")
    note = f"final loss {ours:.4f} (dsml) vs {bare:.4f} (bare loop)"
    if abs(bare - ours) > 1e-3 * max(1.0, abs(bare)):
        print(f"  WARNING: {note}: more than rounding apart; check that both do the same work")
    return note


def section_train(name: str, model: nn.Module, X, y, epochs: int, device, repeats: int) -> list[tuple]:
    """``DSTorch.train`` against the bare loop, with and without a sync per batch (and the bare loop twice)."""
    contenders = {
        BARE: quietly(bare_loop, model, X, y, epochs, device),
        # The same loop again: how far two identical contenders land apart is the noise of the measurement.
        "bare loop again": quietly(bare_loop, model, X, y, epochs, device),
        f"bare loop, sync-free (loss summed on the {'GPU' if device.type == 'cuda' else 'CPU'})": quietly(
            bare_loop, model, X, y, epochs, device, sync_free=True
        ),
        "dsml train": quietly(dsml_train, model, X, y, epochs, device),
        "dsml train, progress bar": quietly(dsml_train, model, X, y, epochs, device, progress=True),
    }
    losses = {n: synced(fn, device)() for n, fn in contenders.items()}  # the check doubles as the warm-up round
    note = check_same_work(losses, device)
    times = side_by_side({n: synced(fn, device) for n, fn in contenders.items()}, repeats, warmup=0)
    rows = time_table(times, BARE)
    print_table(
        f"{name}: {epochs} epochs x {-(-len(X) // BATCH_SIZE)} batches of {BATCH_SIZE} on {device} "
        f"(median of {repeats}; {note})",
        ("contender", "seconds", "ratio to bare loop"),
        rows,
    )
    return rows


def whole_tensor(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """The book's ``score_image`` on a GPU: the whole tensor to the model's device, through the model at once."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        outputs = model(X.to(device))
        _, predicted = torch.max(outputs, 1)
    return (predicted == y.to(device)).float().mean().item()


def section_score(copies: int, device: torch.device, repeats: int) -> list[tuple]:
    """``score_image`` against the whole tensor, with ``X`` on the CPU and (on a GPU) on the GPU."""
    X, _, _, y, _, _, cn = DSTorch.load_image(pl.read_csv("data/mnist_1000.csv"), scale=True)
    X, y = X.repeat(copies, 1, 1, 1), y.repeat(copies)
    torch.manual_seed(SEED)
    model = SimpleCNN(num_classes=len(cn)).to(device)
    places = {"CPU": (X, y)} if device.type == "cpu" else {"CPU": (X, y), "GPU": (X.to(device), y.to(device))}
    rows = []
    for where, (Xs, ys) in places.items():
        base = f"whole tensor (X on the {where})"
        contenders = {
            base: lambda Xs=Xs, ys=ys: whole_tensor(model, Xs, ys),
            f"dsml score_image (X on the {where})": lambda Xs=Xs, ys=ys: DSTorch.score_image(model, Xs, ys, cn),
        }
        accuracy = {n: synced(fn, device)() for n, fn in contenders.items()}
        want, got = accuracy.values()
        if abs(want - got) > 1e-3:
            print(f"  WARNING: accuracies differ: {got} (score_image) vs {want} (whole tensor)")
        memory = {n: peak_gpu_mb(fn, device) for n, fn in contenders.items()}
        # Measuring memory emptied the allocator's cache: the untimed warm-up round fills it again.
        times = side_by_side({n: synced(fn, device) for n, fn in contenders.items()}, repeats)
        table = [
            (n, t, r, "n/a" if memory[n] is None else memory[n], _ratio(memory[n], memory[base]))
            for n, t, r in time_table(times, base)
        ]
        print_table(
            f"scoring {len(X):,} digits {tuple(X.shape[1:])}, X on the {where}, SimpleCNN on {device} "
            f"(median of {repeats}; memory: peak GPU MB allocated during one call, above what was there before)",
            ("contender", "seconds", "time ratio", "peak GPU MB", "memory ratio"),
            table,
        )
        rows += table
    return rows


def _ratio(value: float | None, base: float | None) -> float | str:
    return "n/a" if value is None or not base else value / base


def section_amp(data: dict, epochs: int, device: torch.device, repeats: int) -> dict:
    """``train(amp=True)`` against float32 for the SimpleCNN: time, then the test accuracy of each."""
    torch.manual_seed(SEED)
    model = SimpleCNN(num_classes=len(data["cn"]))
    trained: dict[bool, nn.Module] = {}

    def run(amp: bool) -> Callable[[], None]:
        def go():
            m = copy.deepcopy(model)
            with quiet():
                DSTorch.train(
                    m,
                    optim.Adam(m.parameters(), lr=LR),
                    data["X_train"],
                    data["y_train"],
                    epochs,
                    BATCH_SIZE,
                    device=device,
                    seed=SEED,
                    amp=amp,
                    progress=False,
                )
            trained[amp] = m

        return go

    names = {False: "float32", True: f"amp=True ({'float16' if device.type == 'cuda' else 'bfloat16'})"}
    times = side_by_side({names[a]: synced(run(a), device) for a in (False, True)}, repeats)
    accuracy = {a: DSTorch.score_image(trained[a], data["X_test"], data["y_test"], data["cn"]) for a in trained}
    rows = [(n, t, r, accuracy[a]) for (n, t, r), a in zip(time_table(times, names[False]), (False, True))]
    print_table(
        f"SimpleCNN, {epochs} epochs on {device}: mixed precision against float32 (median of {repeats}; "
        f"test accuracy {accuracy[True] - accuracy[False]:+.4f} with amp)",
        ("contender", "seconds", "ratio to float32", "test accuracy"),
        rows,
    )
    return {"rows": rows, "accuracy_gap": accuracy[True] - accuracy[False]}


def compiled_contender(model: nn.Module, X, y, epochs, device, *, train_fn, **compile_args):
    """A contender running ``train_fn`` on ``torch.compile(model)``, and the seconds of its first call.

    The model is compiled once; every call puts the initial weights back (in place, so the compiled
    code stays valid) and makes a fresh optimizer. ``(None, reason)`` when compiling fails.
    """
    own = copy.deepcopy(model).to(device)
    initial = copy.deepcopy(own.state_dict())
    compiled = torch.compile(own, **compile_args)

    def go():
        own.load_state_dict(initial)
        with quiet():
            return train_fn(compiled, X, y, epochs, device)

    started = time.perf_counter()
    try:
        synced(go, device)()
    except Exception as err:  # a compiler that cannot run here: report it, keep the other contenders
        return None, f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:200]}"
    return go, time.perf_counter() - started


def section_compile(name: str, model: nn.Module, X, y, epochs: int, device, repeats: int, backend: str) -> list:
    """The bare loop compiled (and with CUDA graphs) against the eager one, and dsml's train likewise.

    Rows: (contender, seconds, ratio to the eager bare loop, ratio to dsml's eager train, first call seconds).
    """
    variants = {f"bare loop, torch.compile (backend {backend})": (bare_loop, {"backend": backend})}
    if device.type == "cuda":
        variants["bare loop, torch.compile reduce-overhead (CUDA graphs)"] = (
            functools.partial(bare_loop, cuda_graphs=True),
            {"backend": backend, "mode": "reduce-overhead"},
        )
    variants[f"dsml train(torch.compile(model)) (backend {backend})"] = (dsml_train, {"backend": backend})
    contenders = {
        BARE: quietly(bare_loop, model, X, y, epochs, device),
        "dsml train": quietly(dsml_train, model, X, y, epochs, device),
    }
    first = {}
    for label, (fn, args) in variants.items():
        go, seconds = compiled_contender(model, X, y, epochs, device, train_fn=fn, **args)
        if go is None:
            print(f"  ({label} left out: compiling failed: {seconds})")
            continue
        contenders[label], first[label] = go, seconds
    times = side_by_side({n: synced(fn, device) for n, fn in contenders.items()}, repeats)
    to_dsml = {n: r for n, _, r in time_table(times, "dsml train")}
    rows = [(n, t, r, to_dsml[n], first.get(n, "-")) for n, t, r in time_table(times, BARE)]
    print_table(
        f"{name}, torch.compile: {epochs} epochs on {device} (warm, median of {repeats}; the first call compiles)",
        ("contender", "seconds", "ratio to bare loop", "ratio to dsml train", "first call seconds"),
        rows,
    )
    torch._dynamo.reset()
    return rows


def fashion(quick: bool) -> dict:
    """The shipped Fashion-MNIST images as tensors (in ``--quick`` mode 256 train and 128 test rows)."""
    df = pl.read_csv("data/fashionmnist_10000.csv")
    if quick:
        df = pl.concat(
            [df.filter(pl.col("index") == "train").head(256), df.filter(pl.col("index") == "test").head(128)]
        )
    _, X_train, X_test, _, y_train, y_test, cn = DSTorch.load_image(df, scale=True)
    return {"X_train": X_train, "X_test": X_test, "y_train": y_train, "y_test": y_test, "cn": cn}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu to check the script itself")
    p.add_argument("--quick", action="store_true", help="tiny data, 1 epoch, 1 round: checks the logic, not speed")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS, help="which to run (default all)")
    p.add_argument("--epochs-dense", type=int, default=5)
    p.add_argument("--epochs-cnn", type=int, default=2)
    p.add_argument("--epochs-amp", type=int, default=5, help="SimpleCNN epochs for the accuracy of amp (default 5)")
    p.add_argument("--copies", type=int, default=60, help="scoring: the 1,000 digits repeated this often (60,000)")
    p.add_argument(
        "--compile-backend", default=None, help="torch.compile backend (default: inductor on a GPU, eager on the CPU)"
    )
    p.add_argument("--markdown", type=Path, default=None, help="also write the summary table (Markdown) here")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.epochs_dense, args.epochs_cnn, args.epochs_amp, args.copies = 1, 1, 1, 1, 1
    return args


def plan(args, data: dict, device: torch.device, backend: str) -> list[tuple[str, Callable[[], object]]]:
    """The sections asked for, in the order they run, each as (key in the results, call)."""
    y_train = data["y_train"]
    torch.manual_seed(SEED)
    models = {
        "DenseNet (784-128-64-10)": (
            DenseNet(num_classes=len(data["cn"])),
            data["X_train"].flatten(1),
            args.epochs_dense,
        ),
        "SimpleCNN": (SimpleCNN(num_classes=len(data["cn"])), data["X_train"], args.epochs_cnn),
    }  # name: (model, X, epochs)
    sections = [
        (f"train {name}", lambda name=name, m=m: section_train(name, *m[:2], y_train, m[2], device, args.repeats))
        for name, m in models.items()
        if "train" in args.sections
    ]
    if "score" in args.sections:
        sections.append(("score", lambda: section_score(args.copies, device, args.repeats)))
    if "amp" in args.sections:
        sections.append(("amp", lambda: section_amp(data, args.epochs_amp, device, args.repeats)))
    # Compiling takes the longest, so it comes last: a run cut short still has the other figures.
    sections += [
        (
            f"compile {name}",
            lambda name=name, m=m: section_compile(name, *m[:2], y_train, m[2], device, args.repeats, backend),
        )
        for name, m in models.items()
        if "compile" in args.sections
    ]
    return sections


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    apply_common_args(args)
    device = torch.device(args.device)
    reason = skip_reason(device)
    if reason is not None:
        print(f"gpu: skipped: {reason}")
        return {"skipped": reason}
    backend = args.compile_backend or ("inductor" if device.type == "cuda" else "eager")
    data = fashion(args.quick)
    quick = " (--quick)" if args.quick else ""
    print(f"gpu: {describe(device)}; Fashion-MNIST {len(data['X_train'])} training images{quick}")
    results: dict = {"device": device_name(device)}
    sections = plan(args, data, device, backend)
    title = (
        f"GPU benchmarks on {device_name(device)} (torch {torch.__version__}; `python -m benchmarks gpu`"
        f"{' --quick' if args.quick else ''}, median of {args.repeats})"
    )
    for key, run in sections:
        results[key] = run()
        summary = markdown_summary(title, summary_rows(results, args))
        if args.markdown is not None:
            args.markdown.write_text(summary)  # after every section, in case a later one is cut short
    print("\nSummary for the README:\n\n" + summary)
    return results


if __name__ == "__main__":
    main()
