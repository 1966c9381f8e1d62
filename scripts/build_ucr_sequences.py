"""Build the shipped UCR/UEA sequence sets as long ("tidy") CSV tables.

Source: the ``.ts`` files that ship inside the ``sktime`` wheel on PyPI
(``sktime/datasets/data/<Name>/<Name>_{TRAIN,TEST}.ts``; built with sktime
1.2.0, BSD-3-Clause). They are copies of the UEA & UCR Time Series
Classification Archive (timeseriesclassification.com):

* JapaneseVowels (UCI; Kudo, Toyama & Shimbo, 1999): 12 LPC cepstrum
  features, variable length (7-29 steps), 9 speakers, 270 train / 370 test.
* ItalyPowerDemand (Keogh et al.): univariate, 24 hourly steps, 2 classes
  (1 = Oct-Mar, 2 = Apr-Sep), 67 train / 1,029 test.

Only the files are read (a small parser below), sktime is never imported.
Nothing is sampled, so no seed is used; the official train/test split is kept.

Outputs (one row per series and time step, sorted by id then step):
    data/japanese_vowels.csv    id, step, f0..f11, label, index
    data/italypowerdemand.csv   id, step, f0, label, index
Features are rounded to 6 decimals; labels are kept as the strings in the
file; ``id`` runs over train then test series in file order.

Rebuild from the repo root:
    python scripts/build_ucr_sequences.py
Needs: numpy, polars and sktime (``pip install --no-deps sktime`` is enough).
"""

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[1]
# name -> (dimensions, output CSV)
DATASETS = {
    "JapaneseVowels": (12, "japanese_vowels.csv"),
    "ItalyPowerDemand": (1, "italypowerdemand.csv"),
}


def ts_path(name, split):
    """Locate one ``.ts`` file inside the installed sktime distribution.

    Args:
        name: Data set name, e.g. ``"JapaneseVowels"``.
        split: ``"TRAIN"`` or ``"TEST"``.

    Returns:
        Path to the file.

    Raises:
        FileNotFoundError: If sktime or the file is not installed.
    """
    rel = f"sktime/datasets/data/{name}/{name}_{split}.ts"
    hint = "run `pip install --no-deps sktime`"
    try:
        path = Path(distribution("sktime").locate_file(rel))
    except PackageNotFoundError:
        raise FileNotFoundError(f"sktime is not installed: {hint}") from None
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {hint}")
    return path


def read_ts(path, n_dims):
    """Parse a ``.ts`` file without timestamps or missing values.

    Args:
        path: Path to the ``.ts`` file.
        n_dims: Expected number of dimensions per series.

    Returns:
        A list of ``(values, label)`` pairs; ``values`` has shape (steps, n_dims).

    Raises:
        ValueError: If a series is malformed.
    """
    series, in_data = [], False
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")
        if len(dims) != n_dims:
            raise ValueError(f"{path}:{line_no}: {len(dims)} dimensions, expected {n_dims}")
        values = [np.array(d.split(","), dtype=float) for d in dims]
        if len({v.size for v in values}) != 1 or np.isnan(values[0]).any():
            raise ValueError(f"{path}:{line_no}: unequal dimension lengths or missing values")
        series.append((np.stack(values, axis=1), label.strip()))
    if not series:
        raise ValueError(f"{path}: no series after @data")
    return series


def to_long(name, n_dims):
    """Read both official splits of one data set into one long table.

    Args:
        name: Data set name.
        n_dims: Number of dimensions per series.

    Returns:
        A polars DataFrame with columns id, step, f0.., label, index.
    """
    frames, next_id = [], 0
    for split in ("TRAIN", "TEST"):
        for values, label in read_ts(ts_path(name, split), n_dims):
            steps = len(values)
            rounded = np.round(values, 6) + 0.0  # "+ 0.0" turns -0.0 into 0.0
            frames.append(
                pl.DataFrame(
                    {
                        "id": [next_id] * steps,
                        "step": list(range(steps)),
                        **{f"f{d}": rounded[:, d] for d in range(n_dims)},
                        "label": [label] * steps,
                        "index": [split.lower()] * steps,
                    }
                )
            )
            next_id += 1
    return pl.concat(frames).sort("id", "step")


def main():
    """Write one CSV per data set and print its size, balance and lengths."""
    for name, (n_dims, filename) in DATASETS.items():
        table = to_long(name, n_dims)
        path = REPO_ROOT / "data" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        table.write_csv(path, float_precision=6)
        per_series = table.group_by("id").agg(pl.len().alias("length"), pl.first("label"), pl.first("index"))
        print(f"{name}: {table.height} rows, {per_series.height} series -> {path}")
        print(
            per_series.group_by("index", "label")
            .len()
            .sort("index", "label")
            .pivot("index", index="label", values="len")
        )
        lengths = per_series["length"].value_counts().sort("length").rows()
        print("series length: count =", dict(lengths))


if __name__ == "__main__":
    main()
