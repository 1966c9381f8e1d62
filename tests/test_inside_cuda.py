"""Looking inside on a CUDA GPU: the same numbers as on the CPU, nothing left behind. Skipped without one."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import optim

from dsml import DenseNet, DSTorch, SequenceRNN, SimpleCNN

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_find_lr_restores_a_gpu_model_and_its_random_state():
    model = DenseNet(8, (16,), 3).cuda()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    X, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    weights = copy.deepcopy(model.state_dict())
    cuda_rng = torch.cuda.get_rng_state()
    table = DSTorch.find_lr(model, optimizer, X, y, num_steps=20, batch_size=16)
    assert table.height > 2
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert torch.equal(cuda_rng, torch.cuda.get_rng_state())


@pytest.mark.parametrize("wrt", ["hidden", "input"])
def test_sequence_gradients_on_the_gpu_match_the_cpu(wrt):
    # cuDNN cannot run an RNN backward in eval mode; sequence_gradients turns it off for the measurement
    torch.manual_seed(0)
    model = SequenceRNN(3, 4, hidden_size=8, cell="lstm")
    X, y = torch.randn(10, 6, 3), torch.randint(0, 4, (10,))
    on_cpu = DSTorch.sequence_gradients(model, X, y, wrt=wrt)["gradient"]
    on_gpu = DSTorch.sequence_gradients(model.cuda(), X, y, wrt=wrt)["gradient"]
    torch.testing.assert_close(torch.tensor(on_gpu.to_numpy()), torch.tensor(on_cpu.to_numpy()), rtol=1e-4, atol=1e-7)


def test_heat_maps_and_landscapes_on_the_gpu_match_the_cpu():
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=3, image_size=8, channels=(2, 3), hidden_size=4)
    X, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    cam, sal = DSTorch.grad_cam(model, X), DSTorch.saliency(model, X)
    curve = DSTorch.loss_landscape(model, X, y, steps=5)["loss"].to_numpy()
    model.cuda()
    torch.testing.assert_close(DSTorch.grad_cam(model, X), cam, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(DSTorch.saliency(model, X), sal, rtol=1e-4, atol=1e-6)
    gpu_curve = DSTorch.loss_landscape(model, X, y, steps=5)["loss"].to_numpy()
    torch.testing.assert_close(torch.tensor(gpu_curve), torch.tensor(curve), rtol=1e-4, atol=1e-6)
