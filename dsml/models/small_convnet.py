"""dsml's own small backbone: a convolutional network that ships with weights trained by dsml.

torchvision's ImageNet networks need their weights downloaded (tens of MB)
and 224x224 colour inputs; a class of students offline, on laptops, needs a
backbone that is in the repository and runs on the CPU in seconds. This one
has 151,000 parameters (0.6 MB); ``scripts/build_backbone.py`` trains it on
the 60,000 Fashion-MNIST training images (``data/backbones/small_convnet_fashionmnist.pt``,
which ``DSTorch.pretrained("small_convnet", num_classes)`` loads), on 1,800
MNIST digits (``weights="MNIST"``) and on Fashion-MNIST's classes 0-4 only
(``weights="FASHIONMNIST_0_4"``).
"""

from __future__ import annotations

from torch import Tensor, nn


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    # No bias before batch norm: its shift would cancel the bias anyway.
    return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class SmallConvNet(nn.Module):
    """Five 3x3 convolution blocks (batch norm, ReLU), two poolings, average pooling to a grid, a dense head.

    The ``features`` part turns an image of any size (28x28 for the shipped
    weights) into ``widths[-1] * grid * grid`` numbers: the last feature maps
    averaged over a ``grid`` x ``grid`` grid of regions. A grid rather than
    one average over the whole image (global average pooling, as in ResNet)
    keeps where a pattern is, which a digit needs (a 6 and a 9 have the same
    strokes in different places): on validation digits a linear probe on the
    Fashion-MNIST features did far better with ``grid=3`` than with ``grid=1``. The
    ``classifier`` is one ``nn.Linear``; ``DSTorch.pretrained`` keeps the
    features as the body and puts a new head in place of the classifier.

    Args:
        num_classes: outputs (one logit per class).
        in_channels: 1 for greyscale (the shipped weights), 3 for RGB.
        widths: feature maps of the three stages.
        grid: the last feature maps are averaged over ``grid`` x ``grid`` regions.

    Example:
        >>> model = SmallConvNet(num_classes=10)
        >>> model(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, widths: tuple[int, int, int] = (32, 64, 128), grid: int = 3
    ):
        super().__init__()
        w1, w2, w3 = widths
        self.features = nn.Sequential(
            *_block(in_channels, w1),
            *_block(w1, w1),
            nn.MaxPool2d(2),  # (B, w1, 28, 28) -> (B, w1, 14, 14)
            *_block(w1, w2),
            *_block(w2, w2),
            nn.MaxPool2d(2),  # -> (B, w2, 7, 7)
            *_block(w2, w3),
            nn.AdaptiveAvgPool2d(grid),  # -> (B, w3, grid, grid)
            nn.Flatten(),  # -> (B, w3 * grid * grid)
        )
        self.classifier = nn.Linear(w3 * grid * grid, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, num_classes)
