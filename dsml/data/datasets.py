"""Tables of image paths -> lazy torch ``Dataset``s that decode each image when it is read.

``load_image`` holds every image in memory as float32; a collection larger
than memory needs the other way round: keep only the paths and decode a
batch at a time, in ``DataLoader`` worker processes
(``DSTorch.train(..., num_workers=2)``). An item of ``image_dataset``'s
datasets has exactly the values and class code that ``load_image`` gives the
same row, and torchvision transforms can resize or augment it on the way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset

from dsml._checks import require_bool
from dsml.data.imagefiles.decoding import check_headers, decode, image_headers, require_size
from dsml.data.images import image_table
from dsml.errors import DsmlIndexError, DsmlTypeError


class ImageDataset(Dataset):
    """Images listed in a table, decoded on access; items are ``(x, y)`` pairs.

    Build one with ``image_dataset``. ``x`` is float32 ``(C, H, W)`` (or
    ``(C*H*W,)`` with ``flatten``), ``y`` an int64 class code into
    ``classes``. Only the paths and codes are held, as numpy arrays, so
    ``DataLoader`` workers share them instead of copying them item by item.

    Attributes:
        classes: the class names (``cn``); ``targets``: the class code of each item.
        mode: ``"L"`` (greyscale, 1 channel) or ``"RGB"``; ``size``: ``(H, W)``
            images are decoded at (``None``: each file's own size, left to the transform);
            ``crop``: whether resizing keeps the aspect ratio (centre crop).
        transform: a callable (e.g. a torchvision ``v2`` transform) applied to
            the decoded uint8 tensor ``(C, H, W)`` before the float conversion.

    Example:
        >>> train_ds, test_ds, cn = DSTorch.image_dataset(mnist, scale=True)
        >>> x, y = train_ds[0]
        >>> x.shape, y
        (torch.Size([1, 28, 28]), tensor(3))
    """

    def __init__(
        self,
        paths,
        rows,
        codes,
        classes,
        *,
        mode: str,
        size: tuple[int, int] | None,
        crop: bool = False,
        scale: bool = False,
        flatten: bool = False,
        transform: Callable | None = None,
        split: str = "",
    ):
        self.paths = np.asarray(paths, dtype=np.str_)
        self.rows = np.asarray(rows, dtype=np.int64)  # the table row of each item, for error messages
        self.targets = torch.as_tensor(codes, dtype=torch.int64)
        self.classes = classes
        self.mode, self.size, self.crop = mode, size, crop
        self.scale, self.flatten = scale, flatten
        self.transform = transform
        self.split = split

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        i = int(i)
        if not -n <= i < n:
            raise DsmlIndexError(f"item {i} is out of range: this dataset has {n} images.")
        i %= n
        pixels = decode(str(self.paths[i]), int(self.rows[i]), self.mode, self.size, self.crop)
        if not pixels.flags.writeable:  # torch wants memory it may write
            pixels = pixels.copy()
        x = torch.from_numpy(pixels).permute(2, 0, 1)  # (H, W, C) -> (C, H, W) uint8
        if self.transform is not None:
            x = self.transform(x)
            if not isinstance(x, torch.Tensor):
                raise DsmlTypeError(
                    f"the transform should return a tensor, got {type(x).__name__}. It receives a uint8 "
                    "tensor (C, H, W); with torchvision use transforms.v2 (not ToPILImage at the end)."
                )
        if x.dtype == torch.uint8:
            # The same two steps as load_image, so the values agree to the last bit.
            x = x.to(torch.float32, memory_format=torch.contiguous_format)
            if self.scale:
                x.div_(255.0)
        else:
            x = x.to(torch.float32)  # the transform already made floats (e.g. v2.ToDtype(..., scale=True))
        return (x.reshape(-1) if self.flatten else x), self.targets[i]

    def __repr__(self) -> str:
        channels = 3 if self.mode == "RGB" else 1
        kind = "colour" if self.mode == "RGB" else "greyscale"
        size = f"{self.size[0]}x{self.size[1]} (H x W)" if self.size else "each file's own (the transform sizes them)"
        size += ", aspect ratio kept (centre crop)" if self.crop else ""
        lines = [
            f"{type(self).__name__}" + (f" ({self.split})" if self.split else ""),
            f"    Number of images: {len(self)}",
            f"    Classes: {len(self.classes)}",
            f"    Image size: {size}, {channels} channel(s), {kind}",
            f"    Values: float32, {'scaled to [0, 1]' if self.scale else '0-255'}"
            + (", flattened" if self.flatten else ""),
        ]
        if self.transform is not None:
            lines.append("    Transform: " + repr(self.transform).replace("\n", "\n    "))
        return "\n".join(lines)


def image_dataset(
    df: pl.DataFrame,
    label_name: str = "label",
    filepath: str = "filepath",
    index: str = "index",
    scale: bool = False,
    flatten: bool = False,
    size: tuple[int, int] | None = None,
    transform: Callable | None = None,
    *,
    crop: bool = False,
    train_transform: Callable | None = None,
) -> tuple[ImageDataset, ImageDataset, np.ndarray]:
    """Lazy train and test datasets over a table of image files, like ``load_image`` without the memory.

    Every file's header is read once here (about 10 microseconds per small
    PNG), to find the common mode and size and to report a missing,
    unreadable or refused file now rather than in the middle of an epoch.
    Files are read by the rules of ``load_image`` (formats, the pixel limit,
    orientation, modes); a problem only the pixels show (a float image
    outside 0..1, a file damaged after its header) is reported, with its row
    and path, when the item is read.

    Args:
        df: one row per image, with a label, a file path and a train/test index.
        label_name, filepath, index: the columns, as in ``load_image``.
        scale: divide pixel values by 255.
        flatten: each item as one row of ``C*H*W`` values.
        size: ``(H, W)`` to resize every image to when it is decoded (bilinear).
        crop: with ``size``, keep each image's aspect ratio: resize its short
            side to fit, then cut the middle ``H x W`` out.
        transform: applied to every decoded image, a uint8 tensor ``(C, H, W)``,
            e.g. ``v2.Resize((64, 64))``. With a transform the files may
            differ in size (the transform should make them equal).
        train_transform: used instead of ``transform`` for the training images,
            e.g. with random augmentation that the test images should not get.

    Returns:
        ``train_ds, test_ds, cn``: datasets of ``(x, y)`` pairs for the rows
        whose index is ``"train"`` / ``"test"``, and the sorted class names.

    Example:
        >>> train_ds, test_ds, cn = DSTorch.image_dataset(mnist, scale=True)
        >>> model = SimpleCNN()
        >>> DSTorch.train(model, optim.Adam(model.parameters()), train_ds, num_epochs=2, batch_size=64,
        ...               num_workers=2)
        >>> DSTorch.score_image(model, test_ds, None, cn)
    """
    size = require_size(size, crop)
    scale, flatten = require_bool(scale, "scale"), require_bool(flatten, "flatten")
    paths, codes, cn, train_mask, test_mask = image_table(df, label_name, filepath, index, "train_ds is")
    headers = image_headers(paths)
    sizes = [s for s, _ in headers]
    same_size = size is None and transform is None and train_transform is None
    mode = check_headers(paths, sizes, Counter(m for _, m in headers), same_size, stacklevel=2)
    if size is None and len(set(sizes)) == 1:
        size = (sizes[0][1], sizes[0][0])

    def part(mask: np.ndarray, split: str, split_transform) -> ImageDataset:
        rows = np.flatnonzero(mask)
        return ImageDataset(
            [paths[r] for r in rows],
            rows,
            codes[torch.from_numpy(rows)],
            cn,
            mode=mode,
            size=size,
            crop=crop,
            scale=scale,
            flatten=flatten,
            transform=split_transform,
            split=split,
        )

    train_ds = part(train_mask, "train", train_transform if train_transform is not None else transform)
    return train_ds, part(test_mask, "test", transform), cn
