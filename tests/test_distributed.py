"""Two CPU processes under torchrun (gloo): one set of epoch lines, identical weights on every rank."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from conftest import ROOT

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()) or sys.platform == "win32",
    reason="needs torch.distributed with the gloo backend",
)


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` from the project root; kills every process on timeout."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{out}\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def epoch_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"Epoch \d+/\d+, Loss: ", line)]


@pytest.mark.slow
def test_ranks_train_in_step_and_end_identical(tmp_path):
    result = torchrun("tests/ddp_worker.py", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = epoch_lines(result.stdout)
    # Only rank 0 prints: 3 epochs from tensors, then 2 from a Dataset with validation.
    assert [line.split(",")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3", "Epoch 1/2", "Epoch 2/2"]
    assert "Val accuracy" in lines[-1]

    for run in ("tensors", "dataset"):
        rank0 = torch.load(tmp_path / f"{run}_rank0.pt", weights_only=False)
        rank1 = torch.load(tmp_path / f"{run}_rank1.pt", weights_only=False)
        assert rank0["state"].keys() == rank1["state"].keys()
        for name in rank0["state"]:
            assert torch.equal(rank0["state"][name], rank1["state"][name]), f"{run}: {name} differs between ranks"
        # Losses are summed over both ranks' rows, so both ranks record the same history.
        drop_time = [{k: v for k, v in r.items() if k != "seconds"} for r in rank0["history"]]
        assert drop_time == [{k: v for k, v in r.items() if k != "seconds"} for r in rank1["history"]]

    # Each epoch, the two ranks read disjoint halves of the 240 training rows.
    seen0 = torch.load(tmp_path / "dataset_rank0.pt", weights_only=False)["seen"]
    seen1 = torch.load(tmp_path / "dataset_rank1.pt", weights_only=False)["seen"]
    for epoch in range(2):
        first = set(seen0[-240:][epoch * 120 : (epoch + 1) * 120])
        second = set(seen1[-240:][epoch * 120 : (epoch + 1) * 120])
        assert not first & second and first | second == set(range(240))


@pytest.mark.slow
def test_the_command_line_under_torchrun_prints_and_saves_once(tmp_path):
    weights = tmp_path / "dense.pt"
    result = torchrun(
        "-m",
        "dsml",
        "train",
        "data/mnist_1000.csv",
        "--model",
        "dense",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--seed",
        "1",
        "--save",
        str(weights),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line.split(",")[0] for line in epoch_lines(result.stdout)] == ["Epoch 1/2", "Epoch 2/2"]
    assert len(re.findall(r"^train accuracy: 0\.\d{4}$", result.stdout, re.M)) == 1
    assert len(re.findall(r"^test accuracy: 0\.\d{4}$", result.stdout, re.M)) == 1
    assert result.stdout.count("saved the weights") == 1 and weights.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda:0",
            marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")],
        ),
    ],
)
def test_two_processes_share_one_device_over_gloo(tmp_path, device):
    """Two ranks on one GPU (gloo on CUDA tensors; NCCL refuses a GPU shared by two ranks). The "cpu" case runs
    the same worker without a GPU, so everything but the CUDA tensors is checked everywhere."""
    result = torchrun("tests/ddp_shared_gpu_worker.py", str(tmp_path), device)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = epoch_lines(result.stdout)
    assert [line.split(",")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]  # rank 0 alone prints
    assert all("Val accuracy" in line for line in lines)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert [r["local_rank"] for r in ranks] == [0, 1]
    for r in ranks:
        assert (r["backend"], r["world_size"], r["device"]) == ("gloo", 2, device)
    for name, weights in ranks[0]["state"].items():
        assert torch.equal(weights, ranks[1]["state"][name]), f"{name} differs between the ranks"
    drop_time = [[{k: v for k, v in rec.items() if k != "seconds"} for rec in r["history"]] for r in ranks]
    assert drop_time[0] == drop_time[1]
    losses = [rec["loss"] for rec in ranks[0]["history"]]
    assert losses[-1] < losses[0]
