"""The one way dsml titles a prediction: ``"target => prediction"`` (``"=> prediction"`` with no target).

The misclassified table's ``title_`` column, the heat maps' panel titles and the most-confused bars
all read the same, so they are all written here.
"""

from __future__ import annotations

from collections.abc import Iterable

from dsml.errors import DsmlValueError

ARROW = " => "


def prediction_titles(predictions: Iterable, targets: Iterable | None = None) -> list[str]:
    """``"target => prediction"`` for each pair, or ``"=> prediction"`` when there are no targets.

    Args:
        predictions: the predicted class names (or codes), one per row.
        targets: the true class names (or codes), one per row, or ``None``.

    Returns:
        One title per row, as strings.

    Raises:
        ValueError: when ``targets`` and ``predictions`` differ in length.

    Example:
        >>> prediction_titles(["dog", "dog"], ["cat", "dog"])
        ['cat => dog', 'dog => dog']
        >>> prediction_titles([3])
        ['=> 3']
    """
    predictions = [str(p) for p in predictions]
    if targets is None:
        return [f"=> {p}" for p in predictions]
    targets = [str(t) for t in targets]
    if len(targets) != len(predictions):
        raise DsmlValueError(
            f"{len(targets)} targets but {len(predictions)} predictions: give one target per prediction, "
            "in the same order."
        )
    return [f"{t}{ARROW}{p}" for t, p in zip(targets, predictions)]
