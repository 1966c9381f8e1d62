"""Many batches' rows kept in one tensor: what an epoch or a scoring pass keeps until its end.

Why not a list of per-batch tensors and one ``torch.cat`` at the end: each kept tensor is a small,
long-lived allocation made just after a batch's big buffers were freed, and glibc's malloc carves it
out of the hole they left in its heap. The next batch's buffers of the same size then no longer fit
there, so the heap grows by about one batch per batch and keeps that memory: scoring a lazy dataset of
20,000 64x64 images in batches of 512 ended up holding about as much memory as loading the images
would (notes/lazy.md has the measurements). One buffer per pass, grown by doubling, leaves no such
allocation between batches.
"""

from __future__ import annotations

import torch


class RowBuffer:
    """Rows appended batch by batch into one tensor; a 0-d part is one row.

    Args:
        rows: the expected number of rows, if known (the buffer is allocated once); otherwise it
            doubles when full.
        dtype, device: of the buffer; by default those of the first part (parts are copied, and
            converted, into it).

    Example:
        >>> kept = RowBuffer(4, dtype=torch.float32, device="cpu")
        >>> kept.add(torch.tensor([[1.0], [2.0]])); kept.add(torch.tensor([[3.0]]))
        >>> kept.tensor()
        tensor([[1.], [2.], [3.]])
    """

    def __init__(self, rows: int | None = None, *, dtype: torch.dtype | None = None, device=None):
        self.rows, self.dtype, self.device = rows, dtype, device
        self.buffer: torch.Tensor | None = None
        self.filled = 0
        self._rows: tuple[torch.Tensor, ...] = ()  # the buffer's rows as views, made when a 0-d part first comes

    def __len__(self) -> int:
        return self.filled

    def add(self, part: torch.Tensor) -> None:
        """Copy ``part``'s rows (its first dimension; a 0-d tensor is one row) after the rows so far."""
        start = self.filled
        if part.ndim:
            end = start + part.shape[0]
            buffer = self.buffer if self.buffer is not None and end <= self.buffer.shape[0] else self._grow(part, end)
            buffer[start:end].copy_(part)
        else:  # a batch's loss: into a ready view of its row (a third of the time of indexing the buffer)
            end = start + 1
            if end > len(self._rows):
                buffer = self.buffer if self.buffer is not None and end <= len(self.buffer) else self._grow(part, end)
                self._rows = buffer.unbind(0)
            self._rows[start].copy_(part)
        self.filled = end

    def next(self, rows: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The next ``rows`` rows of a buffer of one value per row, to be written in place: an op's ``out=``
        (``torch.argmax(outputs, dim=1, out=buffer.next(len(outputs), torch.long, outputs.device))``) saves the
        allocation and the copy of ``add``. ``dtype`` and ``device`` make the buffer, if there is none yet."""
        start = self.filled
        end = start + rows
        buffer = self.buffer
        if buffer is None or end > buffer.shape[0]:
            buffer = self._grow(torch.empty(0, dtype=dtype, device=device), end)
        self.filled = end
        return buffer[start:end]

    def _grow(self, part: torch.Tensor, end: int) -> torch.Tensor:
        size = max(self.rows or 0, 2 * self.filled, end, 16)
        dtype = self.dtype if self.dtype is not None else part.dtype
        device = self.device if self.device is not None else part.device
        grown = torch.empty((size, *part.shape[1:]), dtype=dtype, device=device)
        if self.buffer is not None:
            grown[: self.filled].copy_(self.buffer[: self.filled])
        self.buffer, self._rows = grown, ()
        return grown

    def tensor(self) -> torch.Tensor:
        """The rows so far (a view of the buffer); an empty tensor before any was added."""
        if self.buffer is None:
            return torch.empty(0, dtype=self.dtype, device=self.device)
        return self.buffer[: self.filled]
