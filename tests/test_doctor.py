"""``DSTorch.doctor()`` and ``python -m dsml doctor``: the installation check, in each kind of installation.

The checkout (this repository), ``DSML_DATA``, a wheel (a fake one in tmp_path: packed, then
unpacked) and no data at all. The real wheel's doctor runs in tests/test_wheel.py (slow).
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import polars as pl
import pytest
import torch
from cli_helpers import run
from packed_helpers import fake_install, packed_template
from test_first_hour import NAMES, copy_of_mnist

from conftest import ROOT
from dsml import DSTorch, doctor
from dsml.data import shipped

CHECKS = ["dsml", "python", "platform", "processor", "torch", "torchvision", "device", "threads", "data"]
BACKBONES = ["backbone FASHIONMNIST", "backbone MNIST", "backbone FASHIONMNIST_0_4"]


def values(table: pl.DataFrame) -> dict[str, str]:
    return dict(zip(table["check"], table["value"]))


def test_in_the_checkout_everything_is_here(monkeypatch, capsys):
    monkeypatch.delenv("DSML_DATA", raising=False)
    table = DSTorch.doctor()
    assert table.columns == ["check", "value", "ok"]
    assert table["check"].to_list() == CHECKS + [f"data set {n}" for n in NAMES] + BACKBONES
    found = values(table)
    assert found["dsml"] == f"{importlib.metadata.version('dsml')} ({ROOT / 'dsml'})"
    assert found["torch"] == torch.__version__ and found["python"].startswith(platform.python_version())
    assert found["processor"] == f"{doctor.cpu_name()} ({torch.backends.cpu.get_cpu_capability()})"
    assert found["threads"].startswith(f"{torch.get_num_threads()} torch thread(s)")
    assert found["device"].startswith("cuda: " if torch.cuda.is_available() else "cpu (torch")
    assert found["data"] == f"checkout: {ROOT}"
    assert found["data set mnist_1000"] == f"here ({ROOT / 'data' / 'mnist_1000.csv'})"
    assert found["backbone MNIST"] == f"here ({ROOT / 'data' / 'backbones' / 'small_convnet_mnist.pt'})"
    assert table["ok"].all()
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(table) and printed[0].startswith("dsml  ") and "not ok" not in "".join(printed)


def test_DSML_DATA_with_one_data_set_marks_the_others_missing(tmp_path, monkeypatch):
    copy_of_mnist(tmp_path / "copy")
    monkeypatch.setenv("DSML_DATA", str(tmp_path / "copy"))
    table = DSTorch.doctor(verbose=False)
    found = values(table)
    assert found["data"] == f"DSML_DATA: {tmp_path / 'copy'}"
    assert found["data set mnist_1000"].startswith("here (")
    assert found["data set rotten_tomatoes"] == f"missing ({tmp_path / 'copy' / 'data' / 'rotten_tomatoes.csv'})"
    bad = table.filter(~pl.col("ok"))["check"].to_list()
    assert bad == [f"data set {n}" for n in NAMES if n != "mnist_1000"] + BACKBONES


def test_a_wheel_shows_packed_then_unpacked_and_unpacks_nothing_itself(tmp_path, tmp_path_factory, monkeypatch):
    wheel = fake_install(tmp_path, monkeypatch, packed_template(tmp_path_factory.mktemp("packed")))
    found = values(DSTorch.doctor(verbose=False))
    assert found["data"] == f"cache: {wheel.root} (unpacked on first use from {wheel.packed})"
    assert found["data set mnist_1000"] == f"packed ({wheel.root / 'data' / 'mnist_1000.csv'})"
    assert found["backbone FASHIONMNIST"].startswith("packed (") and found["backbone MNIST"].startswith("missing (")
    assert not wheel.cache_base.exists()
    DSTorch.dataset("mnist_1000")
    found = values(DSTorch.doctor(verbose=False))
    assert found["data set mnist_1000"].startswith("unpacked (") and found["data set rotten_tomatoes"].startswith(
        "packed"
    )


def test_a_torchvision_that_does_not_import_is_not_ok_and_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as a torchvision built for another torch fails
    row = DSTorch.doctor(verbose=False).row(CHECKS.index("torchvision"), named=True)
    assert row["ok"] is False
    assert row["value"].startswith(f"{importlib.metadata.version('torchvision')}, but it does not import beside torch")
    assert row["value"].endswith("--index-url https://download.pytorch.org/whl/cpu")


def test_without_any_data_the_data_row_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("DSML_DATA", raising=False)
    monkeypatch.setattr(shipped, "_checkout", lambda: tmp_path)
    table = DSTorch.doctor(verbose=False)
    assert table["check"].to_list() == CHECKS
    row = table.row(len(CHECKS) - 1, named=True)
    assert row["value"].startswith("missing: dsml cannot find its shipped data") and "DSML_DATA" in row["value"]
    assert row["ok"] is False


def test_python_m_dsml_doctor_prints_the_same_lines(capsys, monkeypatch):
    monkeypatch.delenv("DSML_DATA", raising=False)
    status, out, err = run(capsys, "doctor")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert [line.split("  ")[0] for line in lines[: len(CHECKS)]] == CHECKS
    assert lines[-1].startswith("backbone FASHIONMNIST_0_4") and lines[-1].endswith(
        "small_convnet_fashionmnist_0_4.pt)"
    )


@pytest.mark.parametrize("flag", ["--epochs", "--config"])
def test_doctor_takes_no_flags(capsys, flag):
    status, _, err = run(capsys, "doctor", flag, "1")
    assert status == 2 and err.startswith("dsml: error: unrecognized arguments")


def test_the_processor_is_named_from_cpuinfo_or_else_by_python(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9554 64-Core Processor\n")
    assert doctor.cpu_name(str(cpuinfo)) == "AMD EPYC 9554 64-Core Processor"
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert doctor.cpu_name(str(tmp_path / "no such file")) == "arm"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 48.00\n")  # no model name (some ARM boards)
    assert doctor.cpu_name(str(cpuinfo)) == "arm"
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "")
    assert doctor.cpu_name(str(cpuinfo)) == "unknown"
