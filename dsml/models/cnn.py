"""Chapter 14's small convolutional network for images."""

from __future__ import annotations

from torch import Tensor, nn

from dsml.errors import DsmlValueError


class SimpleCNN(nn.Module):
    """Two convolution blocks, then a dense head: the book's ``SimpleCNN``.

    Each block is Conv2d(3x3, padding 1), ReLU, MaxPool2d(2) (and Dropout
    when ``dropout > 0``, the notebook variant), so a 28x28 image becomes
    32 feature maps of 7x7 before the head.

    Args:
        num_classes: outputs (one logit per class).
        in_channels: 1 for greyscale, 3 for RGB.
        image_size: ``(H, W)`` or one int for square images; each side must
            be divisible by 4 (two poolings).
        channels: feature maps in the two convolution blocks.
        hidden_size: units in the dense layer of the head.
        dropout: dropout after each block (0 turns it off, as in the book).

    Example:
        >>> model = SimpleCNN(num_classes=10)
        >>> model(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 28,
        channels: tuple[int, int] = (16, 32),
        hidden_size: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        if h < 4 or w < 4:
            raise DsmlValueError(f"image_size should be at least 4x4 (two 2x2 poolings). Got {h}x{w}.")
        c1, c2 = channels
        # what the model registry needs to build this network again (checkpoints, `dsml score`)
        self.init_args = {
            "num_classes": num_classes,
            "in_channels": in_channels,
            "image_size": [h, w],
            "channels": [c1, c2],
            "hidden_size": hidden_size,
            "dropout": dropout,
        }

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            layers = [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            return layers + ([nn.Dropout(dropout)] if dropout > 0 else [])

        self.features = nn.Sequential(*block(in_channels, c1), *block(c1, c2))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * (h // 4) * (w // 4), hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, C, H, W) -> (B, 32, H/4, W/4)
        return self.head(x)  # -> (B, num_classes)
