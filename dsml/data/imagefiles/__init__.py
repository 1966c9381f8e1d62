"""Image files -> pixels: ``parallel`` (many files, in processes or threads) -> ``decoding`` (one file's
bytes to a uint8 array, resized) -> ``reading`` (opening files safely) / ``png`` (plain PNGs, fast).

Example:
    >>> from dsml.data.imagefiles import read_images
    >>> pixels = read_images(["media/mnist_1000/00000.png"], size=None)
"""

from dsml.data.imagefiles.decoding import decode, image_headers
from dsml.data.imagefiles.parallel import read_images
from dsml.data.imagefiles.reading import open_image

__all__ = ["decode", "image_headers", "open_image", "read_images"]
