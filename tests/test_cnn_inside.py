"""What a CNN sees: Grad-CAM on a model that only looks at one quadrant, saliency against autograd, filters and
feature maps against a hand-made convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from plotnine import ggplot
from torch import nn

from dsml import DSTorch, SimpleCNN
from dsml.inside.filters import feature_maps, filters
from dsml.inside.heatmaps import grad_cam, saliency


class TopLeft(nn.Module):
    """Sees only the top-left quadrant of an 8x8 image: everything else is multiplied by 0 first."""

    def __init__(self, pool: bool = False):
        super().__init__()
        mask = torch.zeros(1, 1, 8, 8)
        mask[..., :4, :4] = 1
        self.register_buffer("mask", mask)
        self.features = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.ReLU())
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.features[0].weight.abs_()
            self.head.weight[0].fill_(1.0)  # class 0: "how much is there", evidence from every map

    def forward(self, x):
        maps = self.pool(self.features(x * self.mask))  # (B, 3, 8, 8) or (B, 3, 4, 4)
        return self.head(maps.mean(dim=(2, 3)))


def test_grad_cam_lights_the_only_quadrant_the_model_looks_at():
    X = torch.rand(5, 1, 8, 8) + 0.1
    heat = grad_cam(TopLeft(), X, "features.1", target=0)
    assert heat.shape == (5, 8, 8)
    assert (heat[:, :4, :4] > 0).all()
    assert heat[:, 5:, :].abs().max() == 0 and heat[:, :, 5:].abs().max() == 0  # the 3x3 filter reaches 1 pixel out
    assert torch.allclose(heat.flatten(1).amax(dim=1), torch.ones(5))


def test_grad_cam_at_a_coarser_layer_is_stretched_to_the_input_and_still_lights_the_quadrant():
    X = torch.rand(4, 1, 8, 8) + 0.1
    heat = grad_cam(TopLeft(pool=True), X, "pool", target=0)  # 4x4 maps, bilinearly stretched to 8x8
    assert heat.shape == (4, 8, 8)
    inside, outside = heat[:, :4, :4].mean(), heat[:, 4:, 4:].mean()
    assert inside > 10 * outside


def test_grad_cam_equals_the_formula_computed_with_autograd_directly():
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=4, image_size=8, channels=(3, 5), hidden_size=6).eval()
    X = torch.randn(6, 1, 8, 8)
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    A = model.features[:4](X).detach().requires_grad_(True)  # the conv "features.3" output, (6, 5, 4, 4)
    scores = model.head(model.features[4:](A)).gather(1, targets[:, None]).sum()
    (dA,) = torch.autograd.grad(scores, A)
    cam = torch.relu((dA.mean(dim=(2, 3), keepdim=True) * A).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    expected = cam / cam.flatten(1).amax(dim=1).clamp(min=1e-30)[:, None, None]
    torch.testing.assert_close(grad_cam(model, X, "features.3", target=targets, batch_size=4), expected)
    torch.testing.assert_close(grad_cam(model, X, target=targets), expected)  # default: the last Conv2d


@pytest.mark.parametrize("channels", [1, 3])
def test_saliency_is_the_absolute_input_gradient_of_the_class_score(channels):
    torch.manual_seed(1)
    model = SimpleCNN(num_classes=3, in_channels=channels, image_size=8, channels=(4, 4), hidden_size=5)
    X = torch.randn(5, channels, 8, 8)
    x = X.clone().requires_grad_(True)
    out = model.eval()(x)
    predicted = out.argmax(dim=1)
    (grad,) = torch.autograd.grad(out.gather(1, predicted[:, None]).sum(), x)
    torch.testing.assert_close(saliency(model, X), grad.abs().amax(dim=1))
    x = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[:, 2].sum(), x)
    torch.testing.assert_close(DSTorch.saliency(model, X, target=2, batch_size=2), grad.abs().amax(dim=1))


def test_saliency_of_a_one_output_model_uses_minus_the_logit_for_class_0():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    X = torch.randn(3, 4)
    x = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    torch.testing.assert_close(saliency(model, X, target=0), grad.abs())
    torch.testing.assert_close(saliency(model, X, target=1), grad.abs())


def test_heat_maps_leave_the_model_as_it_was():
    model = SimpleCNN(num_classes=3, image_size=8, channels=(2, 2), hidden_size=4)
    model.train()
    X = torch.randn(2, 1, 8, 8)
    grad_cam(model, X)
    saliency(model, X)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())


def test_feature_maps_equal_a_manual_convolution():
    torch.manual_seed(2)
    model = SimpleCNN(num_classes=3, image_size=8, channels=(4, 6), hidden_size=4)
    x = torch.randn(1, 8, 8)
    conv = model.features[0]
    manual = F.conv2d(x[None], conv.weight, conv.bias, padding=1)[0]  # (4, 8, 8)
    table = feature_maps(model, x, "features.0")
    assert table.columns == ["channel", "row", "col", "value"]
    values = table.sort(["channel", "row", "col"])["value"].to_numpy().reshape(4, 8, 8)
    np.testing.assert_allclose(values, manual.detach().numpy(), rtol=1e-6, atol=1e-6)
    relu = DSTorch.feature_maps(model, x[None], "features.1")["value"].to_numpy().reshape(4, 8, 8)
    np.testing.assert_allclose(relu, np.maximum(manual.detach().numpy(), 0), rtol=1e-6, atol=1e-6)
    second = feature_maps(model, x, "features.3")  # the second convolution: 6 maps of 4x4
    assert second["channel"].n_unique() == 6 and second.height == 6 * 4 * 4


def test_filters_are_the_convolution_weights():
    model = SimpleCNN(num_classes=3, image_size=8, channels=(4, 6), hidden_size=4)
    table = filters(model, "features.3")
    assert table.height == 6 * 4 * 3 * 3
    w = table.sort(["out_channel", "in_channel", "row", "col"])["weight"].to_numpy().reshape(6, 4, 3, 3)
    np.testing.assert_array_equal(w, model.features[3].weight.detach().numpy())
    assert filters(model)["out_channel"].n_unique() == 4  # default: the first Conv2d


def test_heat_map_titles_read_target_then_prediction():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        model[2].weight.zero_()
        model[2].bias.copy_(torch.tensor([0.0, 5.0, 1.0]))  # always predicts class 1
    X = torch.rand(2, 1, 2, 2)
    named = DSTorch.plot_heatmaps(model, X, torch.tensor([0, 1]), np.array(["cat", "dog", "eel"]), method="saliency")
    assert panel_titles(named) == ["cat => dog", "dog => dog"]
    assert panel_titles(DSTorch.plot_heatmaps(model, X, method="saliency")) == ["=> 1", "=> 1"]


def panel_titles(fig) -> list[str]:
    """The title of each panel, in panel order, as the figure's facet labels them."""
    label = fig.facet.labeller.cols_labeller.func
    return [label(str(p)) for p in fig.data["panel"].cat.categories]


@pytest.mark.slow
def test_the_figures_draw(tmp_path):
    torch.manual_seed(3)
    model = SimpleCNN(num_classes=3, image_size=8, channels=(2, 3), hidden_size=4)
    X, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    figures = {
        "filters_first": DSTorch.plot_filters(model),
        "filters_second": DSTorch.plot_filters(model, "features.3"),
        "feature_maps": DSTorch.plot_feature_maps(model, X[0], "features.1"),
        "grad_cam": DSTorch.plot_heatmaps(model, X, y, np.array(["a", "b", "c"])),
        "saliency": DSTorch.plot_heatmaps(model, X, method="saliency", target=y, limit=2),
    }
    for name, figure in figures.items():
        assert isinstance(figure, ggplot)
        figure.save(tmp_path / f"{name}.png", dpi=40, verbose=False)
        assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_errors_say_what_to_do():
    model = SimpleCNN(num_classes=3, image_size=8, channels=(2, 3), hidden_size=4)
    X = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="has no Conv2d layer, so it has no Grad-CAM"):
        grad_cam(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), X)
    with pytest.raises(ValueError, match="grad_cam needs images"):
        grad_cam(model, X.reshape(2, 64))
    with pytest.raises(ValueError, match="layer 'head.3' gave shape \\(2, 3\\).*feature maps"):
        grad_cam(model, X, "head.3")
    assert all(not m._forward_hooks for m in model.modules())  # the hook went, error or not
    with pytest.raises(ValueError, match="only 3 classes"):
        saliency(model, X, target=3)
    with pytest.raises(ValueError, match="target has 3 class codes but X has 2 rows"):
        saliency(model, X, target=[0, 1, 2])
    with pytest.raises(ValueError, match="feature_maps takes one image"):
        feature_maps(model, X)
    with pytest.raises(TypeError, match="layer 'head.1' is a Linear, but filter pictures needs a Conv2d"):
        filters(model, "head.1")
    with pytest.raises(ValueError, match="has no layer 'features.9'. Its layers are: 'features', 'features.0'"):
        feature_maps(model, X[0], "features.9")
    with pytest.raises(ValueError, match="method should be one of 'grad_cam', 'saliency'. Got 'gradcam'"):
        DSTorch.plot_heatmaps(model, X, method="gradcam")
