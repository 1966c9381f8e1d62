"""Every branch dsml takes only on a GPU, checked on the CPU by faking the decision, not the device.

No test here touches a GPU: ``torch.cuda.is_available`` (and friends) are patched where a branch
reads them, and the result is checked before anything would run on the device (which device was
picked, what autocast and the GradScaler were built as, whether a batch went through pinned memory,
which process-group backend was asked for). What only a GPU can show (the copies, float16 kernels,
NCCL) is in tests/test_cuda.py and tests/test_distributed.py, skipped without one. Already covered
elsewhere and not repeated: the pinning decision of ``TensorBatches`` and ``move_if_fits`` /
``fits_on_device`` with the free memory given (tests/test_training.py).
"""

from __future__ import annotations

import contextlib
import math
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from torch import nn, optim
from torch.utils.data import TensorDataset

from dsml import DenseNet, DSTorch
from dsml.engine import batches as batches_module
from dsml.engine import device as device_module
from dsml.engine.batches import LoaderBatches, TensorBatches
from dsml.engine.losses import resolve_loss
from dsml.train import distributed, loop
from dsml.train.step import Step

CUDA, CUDA1, CPU = torch.device("cuda"), torch.device("cuda", 1), torch.device("cpu")


@pytest.fixture
def blobs():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 3
    y = torch.arange(240) % 3
    return centres[y] + torch.randn(240, 8, generator=g), y


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``n`` GPUs: ``gpus(2)``. Nothing may actually run on them."""

    def fake(n: int = 1):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return fake


@pytest.fixture
def torchrun_env(monkeypatch):
    """The variables ``torchrun --nproc_per_node=2`` sets for the process of local rank 1."""
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)


def net() -> nn.Module:
    return DenseNet(in_features=8, hidden_sizes=(16,), num_classes=3)


# ---------------------------------------------------------------- which device


def test_a_cpu_model_goes_to_cuda_by_default_when_a_gpu_is_there(gpus):
    gpus(1)
    assert device_module.pick_device(net()) == CUDA
    assert device_module.pick_device(net(), "cpu") == CPU  # an explicit device wins
    gpus(0)
    assert device_module.pick_device(net()) == CPU


def test_a_model_already_on_a_gpu_stays_on_its_gpu(gpus):
    gpus(2)

    class OnSecondGpu(nn.Module):  # parameters() is all pick_device reads
        def parameters(self, recurse=True):
            yield SimpleNamespace(device=CUDA1)

    assert device_module.pick_device(OnSecondGpu()) == CUDA1


def test_asking_for_a_gpu_by_number(gpus):
    gpus(2)
    assert device_module.pick_device(net(), "cuda:1") == CUDA1
    assert device_module.pick_device(net(), torch.device("cuda", 0)) == torch.device("cuda", 0)
    with pytest.raises(
        ValueError, match=r"'cuda:2' was asked for, but this machine has 2 GPU\(s\) \(cuda:0 to cuda:1\)"
    ):
        device_module.pick_device(net(), "cuda:2")


def test_train_picks_cuda_without_training_on_it(gpus, blobs, monkeypatch):
    """The whole decision inside ``train``: the Loop's device, read just before the first epoch would run."""
    gpus(1)
    seen = []
    monkeypatch.setattr(loop.Loop, "run", lambda self, data: seen.append(self.device))
    X, y = blobs
    model = net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=1, verbose=False)
    assert seen == [CUDA]
    assert next(model.parameters()).device == CPU  # nothing moved: fit never ran


def test_the_free_gpu_memory_is_read_from_the_device_asked_about(monkeypatch):
    asked = []

    def mem_get_info(device):
        asked.append(device)
        return 1000, 80_000  # free, total

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    assert device_module.fits_on_device(500, CUDA1)
    assert not device_module.fits_on_device(501, CUDA1)  # over half the free memory, not half the total
    assert asked == [CUDA1, CUDA1]
    assert not device_module.fits_on_device(1, CPU) and len(asked) == 2  # the CPU: never asked


# ---------------------------------------------------------------- copies to the device


class FakeBatch:
    """Stands in for a CPU tensor: to_device only reads ``device``, ``is_pinned()`` and calls ``to``."""

    def __init__(self, pinned: bool):
        self.device, self.pinned, self.calls = CPU, pinned, []

    def is_pinned(self) -> bool:
        return self.pinned

    def to(self, device, non_blocking=False):
        self.calls.append((device, non_blocking))
        return self


@pytest.mark.parametrize("pinned", [True, False])
def test_a_copy_from_pinned_memory_does_not_block(pinned):
    batch = FakeBatch(pinned)
    assert batches_module.to_device(batch, CUDA) is batch
    assert batch.calls == [(CUDA, pinned)]


def test_a_batch_already_on_the_device_is_not_copied():
    X = torch.zeros(3, 2)
    assert batches_module.to_device(X, CPU) is X


def test_cpu_batches_for_a_gpu_are_pinned_and_the_pinned_copy_is_sent(monkeypatch):
    """``TensorBatches`` towards a GPU: each gathered batch is pinned, and that pinned tensor is what is copied."""
    pinned, copied = set(), []

    def pin_memory(self):
        out = self.clone()
        pinned.add(id(out))
        return out

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
    monkeypatch.setattr(batches_module, "to_device", lambda x, device: copied.append((id(x), device)) or x)
    X, y = torch.arange(20.0).reshape(10, 2), torch.arange(10)
    got = list(TensorBatches(X, y, 4, device=CUDA, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert len(got) == 3 and len(copied) == 6  # X and y of each batch
    assert all(i in pinned and device == CUDA for i, device in copied)
    assert sorted(torch.cat([yb for _, yb in got]).tolist()) == list(range(10))  # every row once


def test_cpu_batches_for_the_cpu_are_not_pinned(monkeypatch):
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: pytest.fail("pinned a batch for the CPU"))
    X, y = torch.zeros(10, 2), torch.zeros(10, dtype=torch.long)
    assert len(list(TensorBatches(X, y, 4, device=CPU, shuffle=True))) == 3


@pytest.mark.parametrize("device, pin", [(CUDA, True), (CUDA1, True), (CPU, False)])
def test_a_dataset_is_loaded_into_pinned_memory_only_for_a_gpu(device, pin):
    data = LoaderBatches(TensorDataset(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long)), 4, device=device)
    assert data.loader.pin_memory is pin and data.device == device and len(data) == 3


# ---------------------------------------------------------------- mixed precision


def step(device: torch.device, amp: bool) -> Step:
    model = net()
    return Step(model, optim.SGD(model.parameters(), lr=0.1), resolve_loss(None, torch.arange(3), 3), device, amp=amp)


def test_amp_on_a_gpu_is_float16_with_gradient_scaling(gpus):
    gpus(1)  # GradScaler and autocast switch themselves off when they see no GPU
    s = step(CUDA, amp=True)
    assert (s.autocast.device, s.autocast.fast_dtype, s.autocast._enabled) == ("cuda", torch.float16, True)
    assert s.scaler.is_enabled()


def test_without_amp_a_gpu_step_is_plain_float32(gpus):
    gpus(1)
    s = step(CUDA, amp=False)
    assert isinstance(s.autocast, contextlib.nullcontext) and s.scaler is None


def test_amp_on_the_cpu_is_bfloat16_without_scaling():
    s = step(CPU, amp=True)
    assert (s.autocast.device, s.autocast.fast_dtype, s.autocast._enabled) == ("cpu", torch.bfloat16, True)
    assert s.scaler is None  # bfloat16 has float32's range: nothing underflows, nothing to scale


def test_amp_trains_on_the_cpu_in_bfloat16(blobs):
    X, y = blobs
    model = net()
    dtypes = set()
    model.net[0].register_forward_hook(lambda m, inp, out: dtypes.add(out.dtype) if m.training else None)
    history = DSTorch.train(
        model,
        optim.Adam(model.parameters(), lr=0.01),
        X,
        y,
        num_epochs=6,
        batch_size=32,
        amp=True,
        seed=0,
        device="cpu",
        verbose=False,
    )
    assert dtypes == {torch.bfloat16}  # the training forward passes ran under bfloat16 autocast
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    losses = history.df["loss"].to_list()
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0]
    assert history.records[-1]["accuracy"] > 0.9


def test_an_epoch_reads_nothing_back_from_the_device_until_it_ends(monkeypatch, blobs):
    """On a GPU every read of a value (``.item()``, ``float()``...) waits for the GPU, so an epoch keeps its
    losses and tallies as tensors and reads them once at the end. Here each read is counted per batch."""
    reads = {"count": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, **kwargs):
            reads["count"] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    X, y = blobs
    X, y = X[:, :1].repeat(1, 8), X[:, 1:2]  # regression: a classifier's loss checks codes on the CPU itself
    model = DenseNet(in_features=8, hidden_sizes=(16,), num_classes=1)
    at_each_batch = []

    class Spy(Step):
        def __call__(self, xb, yb):
            at_each_batch.append(reads["count"])
            return super().__call__(xb, yb)

    monkeypatch.setattr(loop, "Step", Spy)
    history = DSTorch.train(model, optim.SGD(model.parameters(), lr=0.01), X, y, num_epochs=1, verbose=False)
    record = history[-1]
    assert len(at_each_batch) == 8 and len(set(at_each_batch)) == 1  # no read between the batches
    assert math.isfinite(record["loss"])  # read once, at the end


# ---------------------------------------------------------------- torch.distributed on GPUs


def test_under_torchrun_each_process_takes_the_gpu_of_its_local_rank(torchrun_env, monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.local_device(CUDA) == CUDA1 and chosen == [1]
    assert distributed.local_device(torch.device("cuda", 0)) == torch.device("cuda", 0)  # asked for by number
    assert distributed.local_device(CPU) == CPU and chosen == [1]


def test_more_processes_than_gpus_is_refused_in_words(torchrun_env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: pytest.fail("set_device of a GPU that is not there"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # LOCAL_RANK is 1: a second process on one GPU
    with pytest.raises(ValueError, match=r"more processes on this machine than it has GPUs \(1\).*--nproc_per_node=1"):
        distributed.local_device(CUDA)


def test_without_torchrun_the_gpu_is_left_as_asked(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: pytest.fail("set_device without torchrun"))
    assert distributed.local_device(CUDA) == CUDA


def test_train_under_torchrun_uses_the_local_ranks_gpu(gpus, torchrun_env, blobs, monkeypatch):
    gpus(2)
    seen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: None)
    monkeypatch.setattr(loop.Loop, "run", lambda self, data: seen.append(self.device))
    X, y = blobs
    model = net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=1, verbose=False)
    assert seen == [CUDA1]


@pytest.fixture
def process_group(monkeypatch):
    """Record ``init_process_group`` calls instead of starting a group."""
    calls = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kwargs: calls.append((backend, kwargs)))
    monkeypatch.setattr(distributed.atexit, "register", lambda fn: None)
    return calls


def test_gpus_talk_over_nccl_bound_to_their_device(process_group):
    distributed._start_group(CUDA1)
    assert process_group == [("nccl", {"device_id": CUDA1})]


def test_cpus_talk_over_gloo(process_group):
    distributed._start_group(CPU)
    assert process_group == [("gloo", {})]


def test_a_torch_without_gloo_is_explained_on_the_cpu(process_group, monkeypatch):
    monkeypatch.setattr(dist, "is_gloo_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs the gloo backend, which this build of torch lacks"):
        distributed._start_group(CPU)
    assert process_group == []


@pytest.mark.parametrize("device, ids", [(CUDA1, [1]), (CPU, None)])
def test_ddp_is_bound_to_this_processs_gpu(torchrun_env, monkeypatch, device, ids):
    started, wrapped = [], []
    monkeypatch.setattr(distributed, "_start_group", started.append)

    class FakeDDP(nn.Module):
        def __init__(self, module, device_ids=None):
            super().__init__()
            wrapped.append(device_ids)
            self.module = module

    monkeypatch.setattr(nn.parallel, "DistributedDataParallel", FakeDDP)
    model = net()
    run = distributed.setup(model, device)
    assert run.active and started == [device] and wrapped == [ids]
    assert isinstance(run.model, FakeDDP) and run.model.module is model


# ---------------------------------------------------------------- known gap (dsml/train is the lead's)


def test_validation_codes_beyond_the_outputs_are_refused_before_training(blobs):
    X, y = blobs
    y_valid = y[:30].clone()
    y_valid[7] = 5  # the model has 3 outputs
    model = net()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="class code 5"):
        DSTorch.train(
            model,
            optim.SGD(model.parameters(), lr=0.1),
            X,
            y,
            num_epochs=2,
            X_valid=X[:30],
            y_valid=y_valid,
            device="cpu",
            verbose=False,
        )
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # refused before any update


def test_without_amp_a_callers_autocast_is_switched_off_for_training():
    s = step(CPU, amp=False)
    assert isinstance(s.autocast, contextlib.nullcontext)  # nothing to enter, nothing to pay per batch
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = step(CPU, amp=False)
        _, out = inside(torch.randn(4, 8), torch.tensor([0, 1, 2, 0]))
    assert out.dtype == torch.float32  # train(amp=False) inside an autocast still trains in float32
