"""dsml: the textbook's deep-learning helpers, done properly.

``from dsml import *`` gives the book's ``DSImage`` and ``DSTorch`` and
dsml's networks. See README.md and the documentation site (docs/, built by ./run docs).
"""

from dsml.data.datasets import ImageDataset
from dsml.data.shipped import data_path  # the first hour: shipped data from any folder
from dsml.data.text import Vocabulary
from dsml.facade import DSImage, DSTorch
from dsml.models.cnn import SimpleCNN
from dsml.models.dense import DenseNet
from dsml.models.pretrained import PretrainedNet
from dsml.models.rnn import SequenceRNN
from dsml.models.small_convnet import SmallConvNet
from dsml.models.text import TextCNN, TextRNN
from dsml.train.callbacks import Callback
from dsml.train.history import History
from dsml.train.seeding import seed_everything  # the first hour: one seed for everything

__all__ = [
    "Callback",
    "DSImage",
    "DSTorch",
    "DenseNet",
    "History",
    "ImageDataset",
    "PretrainedNet",
    "SequenceRNN",
    "SimpleCNN",
    "SmallConvNet",
    "TextCNN",
    "TextRNN",
    "Vocabulary",
    # the first hour
    "data_path",
    "seed_everything",
]
__version__ = "0.1.0"
