"""The chapters' networks, dsml's backbone and pretrained networks, as plain ``nn.Module``s.

``pretrained`` shares its module's name, so it is imported from it: ``from dsml.models.pretrained import
pretrained``.

Example:
    >>> from dsml.models import DenseNet
    >>> DenseNet()(torch.zeros(2, 784)).shape
    torch.Size([2, 10])
"""

from dsml.models.cnn import SimpleCNN
from dsml.models.dense import DenseNet
from dsml.models.pretrained import PretrainedNet, backbones
from dsml.models.rnn import SequenceRNN
from dsml.models.small_convnet import SmallConvNet
from dsml.models.text import TextCNN, TextRNN

__all__ = [
    "DenseNet",
    "PretrainedNet",
    "SequenceRNN",
    "SimpleCNN",
    "SmallConvNet",
    "TextCNN",
    "TextRNN",
    "backbones",
]
