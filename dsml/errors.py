"""The errors dsml raises on purpose: a mistake in what it was given (a table, a file, a tensor, an
argument), explained in words that say what to do.

Each one is also the built-in exception that fits, so ``except ValueError`` catches a ``DsmlValueError``
and a student's traceback still ends in a familiar name; ``except DsmlError`` catches every one of
them. The command line tells them from bugs by type alone: a ``DsmlError`` (or an ``OSError``: a path
that cannot be read or written) is one line on stderr and exit status 2; anything else, raised inside
torch, numpy or polars or by a slip in dsml, keeps its traceback and exits with 1, so it gets reported.

Example:
    >>> try:
    ...     DSTorch.load_image(table_without_a_filepath_column)
    ... except DsmlError as err:
    ...     print(err)
    the table has no column 'filepath' ...
"""

from __future__ import annotations


class DsmlError(Exception):
    """Base of every error dsml raises on purpose about what it was given."""


class DsmlValueError(DsmlError, ValueError):
    """A value dsml cannot use: the wrong size, range, label, shape, or a missing column."""


class DsmlTypeError(DsmlError, TypeError):
    """An argument of the wrong kind: a float tensor where class codes go, a list where a model goes."""


class DsmlIndexError(DsmlError, IndexError):
    """An item outside a dataset."""


class DsmlFileNotFoundError(DsmlError, FileNotFoundError):
    """A file or folder that does not exist."""


class DsmlFileExistsError(DsmlError, FileExistsError):
    """A file dsml will not replace without ``overwrite=True``."""


class DsmlIsADirectoryError(DsmlError, IsADirectoryError):
    """A folder where a file should be."""


class DsmlNotADirectoryError(DsmlError, NotADirectoryError):
    """A file where a folder should be (or above one)."""


class DsmlPermissionError(DsmlError, PermissionError):
    """A file or folder dsml may not read or write."""


class DsmlConnectionError(DsmlError, ConnectionError):
    """Weights that are not on this machine and could not be downloaded."""


# The built-in exception each of dsml's stands for (dsml/ raises these names, never the built-ins themselves).
FOR_BUILTIN: dict[type[Exception], type[DsmlError]] = {
    ValueError: DsmlValueError,
    TypeError: DsmlTypeError,
    IndexError: DsmlIndexError,
    FileNotFoundError: DsmlFileNotFoundError,
    FileExistsError: DsmlFileExistsError,
    IsADirectoryError: DsmlIsADirectoryError,
    NotADirectoryError: DsmlNotADirectoryError,
    PermissionError: DsmlPermissionError,
    ConnectionError: DsmlConnectionError,
}
