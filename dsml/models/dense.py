"""Chapter 13's dense (fully connected) network."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class DenseNet(nn.Module):
    """A stack of Linear + ReLU layers ending in one logit per class.

    With the defaults this is the book's chapter 13 network,
    Linear(784, 128), ReLU, Linear(128, 64), ReLU, Linear(64, 10), and its
    ``state_dict`` keys (``net.0.weight``, ...) match the book's class, so
    weights saved from either load into the other.

    Args:
        in_features: values per input row (28*28 = 784 for flattened MNIST).
        hidden_sizes: units in each hidden layer.
        num_classes: outputs (one logit per class; the loss applies softmax).

    Example:
        >>> model = DenseNet()
        >>> model(torch.zeros(5, 784)).shape
        torch.Size([5, 10])
    """

    def __init__(self, in_features: int = 784, hidden_sizes: Sequence[int] = (128, 64), num_classes: int = 10):
        super().__init__()
        # what the model registry needs to build this network again (checkpoints, `dsml score`)
        self.init_args = {"in_features": in_features, "hidden_sizes": list(hidden_sizes), "num_classes": num_classes}
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, in_features) -> (B, num_classes)
