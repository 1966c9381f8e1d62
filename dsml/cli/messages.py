"""What the command line prints when something goes wrong: one line, in the words of its flags.

dsml's library messages give Python advice (``size=(H, W)``, ``device='cpu'``,
``overwrite=True``); someone at a shell needs the flag instead (``--size H W``, ``--device cpu``,
``--overwrite``). ``to_flags`` rewrites each such hint; every rule has a test.
"""

from __future__ import annotations

import re
import sys

# (pattern, replacement), applied in order; each turns a Python keyword hint into the CLI's flag.
HINTS: list[tuple[str, str]] = [
    (r"\bsize=\(H, W\)", "--size H W"),
    (r"\bsize=\((\d+), (\d+)\)", r"--size \1 \2"),
    (r"\blabel_name=\.\.\., filepath=\.\.\., index=\.\.\.", "--label ..., --filepath ..., --index ..."),
    (r"\btokens_expr=\.\.\., label_expr=\.\.\.", "--text ..., --label ..."),
    (r"\bid=\.\.\., step=\.\.\., label_name=\.\.\.", "--id ..., --step ..., --label ..."),
    (r"\bfeatures=\[\.\.\.\]", "--features COLUMN ..."),
    (r"\bdevice=['\"]([\w:]+)['\"]", r"--device \1"),
    (
        r"\bdevice should be 'cpu', 'cuda' or 'cuda:N' \(e\.g\. 'cuda:1'\)(.*) Did you mean '(\w+)'\?",
        r"--device should be cpu, cuda or cuda:N (e.g. cuda:1)\1 Did you mean --device \2?",
    ),
    (
        r"\bdevice should be 'cpu', 'cuda' or 'cuda:N' \(e\.g\. 'cuda:1'\)",
        "--device should be cpu, cuda or cuda:N (e.g. cuda:1)",
    ),
    (r"\bdevice '([\w:]+)' was asked for", r"--device \1 was asked for"),
    (r"\boverwrite=True\b", "--overwrite"),
    (r"\bresume=True\b", "--resume"),
    (r"\bresume=False\b", "no --resume"),
    (r"\bload the images with flatten=True\b", "use --model dense, which flattens the images"),
    (r"\bload the images with flatten=False\b", "use --model cnn, which keeps the images whole"),
    (r"\bmax_length=(\d+)", r"--max-length \1"),
    (r"\bvalid_fraction=([\d.]+)", r"--valid-fraction \1"),
    (r"\blr=([\d.e-]+)", r"--lr \1"),
    (r"\bnum_workers=(\d+)", r"--workers \1"),
    (r"\bnum_epochs=(\d+)", r"--epochs \1"),
    (r"\bbatch_size=(\d+)", r"--batch-size \1"),
    (r"\bmin_count=(\d+)", r"--min-count \1"),
    (r"\bcheckpoint=", "--checkpoint "),
    (r"\bvalid_fraction\b", "--valid-fraction"),
    (r"\bmax_length\b", "--max-length"),
    (r"\bmin_count\b", "--min-count"),
    (r"\bnum_epochs\b", "--epochs"),
    (r"\bnum_workers\b", "--workers"),
    (r"\bbatch_size\b", "--batch-size"),
    (r"\blabel_name\b", "--label"),
]


def to_flags(message: str) -> str:
    """Rewrite the Python keyword hints in a library message as command-line flags.

    Example:
        >>> to_flags("Pass size=(H, W) to resize them all.")
        'Pass --size H W to resize them all.'
    """
    for pattern, replacement in HINTS:
        message = re.sub(pattern, replacement, message)
    return message


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined, runs of spaces collapsed."""
    return " ".join(str(text).split())


def error(err: BaseException | str) -> None:
    """Print ``dsml: error: ...`` (one line, flags not keywords) on stderr."""
    text = one_line(to_flags(str(err))) if str(err) else type(err).__name__
    print(f"dsml: error: {text}", file=sys.stderr)


def warning(message: Warning | str) -> None:
    print(f"dsml: warning: {one_line(to_flags(str(message)))}", file=sys.stderr)
