"""dsml: the textbook's deep-learning helpers, done properly.

``from dsml import *`` gives the book's ``DSImage`` and ``DSTorch`` and
dsml's networks. See README.md.
"""

from dsml.data.datasets import ImageDataset
from dsml.data.text import Vocabulary
from dsml.facade import DSImage, DSTorch
from dsml.models.cnn import SimpleCNN
from dsml.models.dense import DenseNet
from dsml.models.pretrained import PretrainedNet
from dsml.models.rnn import SequenceRNN
from dsml.models.small_convnet import SmallConvNet
from dsml.models.text import TextCNN, TextRNN
from dsml.train.history import History

__all__ = [
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
]
__version__ = "0.1.0"
