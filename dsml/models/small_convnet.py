"""dsml's own small backbone: a convolutional network that ships with weights trained on Fashion-MNIST.

torchvision's ImageNet networks need their weights downloaded (tens of MB)
and 224x224 colour inputs; a class of students offline, on laptops, needs a
backbone that is in the repository and runs on the CPU in seconds. This one
has 140,000 parameters (560 KB); ``scripts/build_backbone.py`` trains it on
the 60,000 Fashion-MNIST training images and writes
``data/backbones/small_convnet_fashionmnist.pt``, which
``DSTorch.pretrained("small_convnet", num_classes)`` loads.
"""

from __future__ import annotations

from torch import Tensor, nn


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    # No bias before batch norm: its shift would cancel the bias anyway.
    return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class SmallConvNet(nn.Module):
    """Five 3x3 convolution blocks (batch norm, ReLU), two poolings, global average pooling, a dense head.

    The ``features`` part turns any image of at least 4x4 pixels into
    ``widths[-1]`` numbers (global average pooling makes it size-free); the
    ``classifier`` is one ``nn.Linear``. ``DSTorch.pretrained`` keeps the
    features as the body and puts a new head in place of the classifier.

    Args:
        num_classes: outputs (one logit per class).
        in_channels: 1 for greyscale (the shipped weights), 3 for RGB.
        widths: feature maps of the three stages.

    Example:
        >>> model = SmallConvNet(num_classes=10)
        >>> model(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths: tuple[int, int, int] = (32, 64, 128)):
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
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # -> (B, w3)
        )
        self.classifier = nn.Linear(w3, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, num_classes)
