"""Tables in, tensors out: image, text and sequence tables, lazy datasets, splits, the shipped data.

A name here never hides a module of the package (``dsml.data.datasets`` is the lazy-dataset module;
the list of shipped data sets is ``dsml.data.shipped.datasets``).

Example:
    >>> from dsml.data import dataset, load_image
    >>> X, X_train, X_test, y, y_train, y_test, cn = load_image(dataset("mnist_1000"), scale=True)
"""

from dsml.data.datasets import ImageDataset, image_dataset
from dsml.data.folders import table_from_folder
from dsml.data.images import load_image
from dsml.data.sequences import load_sequences
from dsml.data.shipped import data_path, dataset
from dsml.data.splits import stratified_split
from dsml.data.text import Vocabulary, build_vocabulary, embedding_matrix, load_text
from dsml.data.toy import load_points, toy_data

__all__ = [
    "ImageDataset",
    "Vocabulary",
    "build_vocabulary",
    "data_path",
    "dataset",
    "embedding_matrix",
    "image_dataset",
    "load_image",
    "load_points",
    "load_sequences",
    "load_text",
    "stratified_split",
    "table_from_folder",
    "toy_data",
]
