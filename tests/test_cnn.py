"""SimpleCNN: shapes for other image sizes, the book's workflow on MNIST, and Fashion-MNIST."""

import polars as pl
import pytest
import torch
from torch import nn

from dsml import DSTorch, SimpleCNN

pytestmark = pytest.mark.usefixtures("one_thread")


class BookSimpleCNN(nn.Module):
    """Chapter 14's SimpleCNN as the book writes it."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x)


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        ({}, (4, 1, 28, 28)),
        ({"in_channels": 3, "image_size": 32}, (4, 3, 32, 32)),
        ({"image_size": 8}, (4, 1, 8, 8)),
        ({"image_size": (12, 20), "dropout": 0.5}, (4, 1, 12, 20)),
    ],
)
def test_simple_cnn_takes_other_image_sizes(kwargs, shape):
    model = SimpleCNN(num_classes=7, **kwargs)
    assert model(torch.zeros(shape)).shape == (4, 7)


def test_simple_cnn_defaults_are_the_books_layers():
    ours, book = SimpleCNN(), BookSimpleCNN()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in book.parameters()]
    assert not any(isinstance(m, nn.Dropout) for m in ours.modules())


def test_simple_cnn_rejects_images_too_small_to_pool_twice():
    with pytest.raises(ValueError, match="image_size should be at least 4x4"):
        SimpleCNN(image_size=3)


@pytest.fixture(scope="module")
def mnist():
    return DSTorch.load_image(pl.read_csv("data/mnist_1000.csv"), scale=True)


@pytest.mark.slow
@pytest.mark.parametrize("network", [BookSimpleCNN, SimpleCNN], ids=["book", "dsml"])
def test_the_books_cnn_workflow_reaches_0_90_on_mnist(mnist, network):
    X, X_train, X_test, y, y_train, y_test, cn = mnist
    assert X.shape == (1000, 1, 28, 28) and len(X_train) == 750
    torch.manual_seed(0)
    model = network()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    DSTorch.train(model, optimizer, X_train, y_train, num_epochs=20, batch_size=64, seed=0, verbose=False)
    accuracy = DSTorch.score_image(model, X_test, y_test, cn)
    assert accuracy >= 0.90, accuracy


@pytest.mark.slow
def test_fashion_mnist_loads_and_a_cnn_beats_the_majority_in_two_epochs():
    fashion = pl.read_csv("data/fashionmnist_10000.csv")
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(fashion, scale=True)
    assert X.shape == (10000, 1, 28, 28) and len(X_train) == 7500 and len(X_test) == 2500
    assert list(cn) == sorted(fashion["label"].unique().to_list()) and len(cn) == 10
    assert "ankle boot" in cn and "t-shirt/top" in cn
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=len(cn))
    DSTorch.train(
        model,
        torch.optim.Adam(model.parameters(), lr=1e-3),
        X_train[:3000],
        y_train[:3000],
        num_epochs=2,
        batch_size=64,
        seed=0,
        verbose=False,
    )
    majority = float(torch.bincount(y_test).max()) / len(y_test)
    accuracy = DSTorch.score_image(model, X_test, y_test, cn)
    assert majority <= 0.11 and accuracy >= 0.6, accuracy
