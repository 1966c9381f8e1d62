"""The GPU benchmark's logic, run on the CPU with tiny data (its timings mean nothing here), and its skip line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from conftest import ROOT


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def table_rows(out: str, title: str) -> dict[str, list[str]]:
    """The rows under the table whose title starts with ``title``: contender -> its numbers."""
    block = out.split("\n" + title, 1)[1].split("\n\n", 1)[0].splitlines()[2:]  # past the title and the header
    rows = {}
    for line in block:
        name, *numbers = re.split(r"\s{2,}", line.strip())
        rows[name] = numbers
    return rows


@pytest.mark.slow
def test_every_section_runs_on_the_cpu_and_prints_its_ratios(tmp_path):
    summary = tmp_path / "gpu.md"
    done = bench("benchmarks.bench_gpu", "--device", "cpu", "--quick", "--threads", "1", "--markdown", str(summary))
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "skipped" not in out and "left out" not in out and "WARNING" not in out
    for model in ("DenseNet (784-128-64-10)", "SimpleCNN"):
        train = table_rows(out, f"{model}: 1 epochs x 4 batches of 64 on cpu")
        assert set(train) == {
            "bare loop (loss.item() per batch)",
            "bare loop again",
            "bare loop, sync-free (loss summed on the CPU)",
            "dsml train",
            "dsml train, progress bar",
        }
        assert train["bare loop (loss.item() per batch)"][1] == "1.000"  # the baseline's ratio to itself
        assert all(float(seconds) > 0 and float(ratio) > 0 for seconds, ratio in train.values())
        compiled = table_rows(out, f"{model}, torch.compile")
        assert list(compiled) == [
            "bare loop (loss.item() per batch)",
            "dsml train",
            "bare loop, torch.compile (backend eager)",
            "dsml train(torch.compile(model)) (backend eager)",
        ]
    score = table_rows(out, "scoring 1,000 digits (1, 28, 28), X on the CPU")
    assert list(score) == ["whole tensor (X on the CPU)", "dsml score_image (X on the CPU)"]
    assert score["dsml score_image (X on the CPU)"][2:] == ["n/a", "n/a"]  # no GPU memory on the CPU
    amp = table_rows(out, "SimpleCNN, 1 epochs on cpu: mixed precision")
    assert list(amp) == ["float32", "amp=True (bfloat16)"] and all(0 <= float(r[2]) <= 1 for r in amp.values())
    table = summary.read_text()
    assert table in out and table.count("\n| ") == 2 + 2 + 4 + 1 + 1  # header, rule, train, compile, score, amp
    assert "| train DenseNet, 1 epochs |" in table and "x |" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the line printed where there is no GPU")
def test_without_a_gpu_it_says_so_and_succeeds(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the benchmarks work from the project root (and go there themselves)
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import __main__ as all_benchmarks
    from benchmarks import bench_gpu

    assert bench_gpu.main([]) == {"skipped": bench_gpu.skip_reason(torch.device("cuda"))}
    all_benchmarks.main(["gpu"])  # python -m benchmarks gpu: returns normally, so the exit status is 0
    out = capsys.readouterr().out
    assert out.count("gpu: skipped: no CUDA GPU") == 2 and "Summary" not in out
