"""``main``: flags and config into settings, a command run, and every ending mapped to an exit status."""

from __future__ import annotations

import linecache
import os
import sys
import warnings
from pathlib import Path

from dsml import doctor
from dsml.cli import messages, train_command, use_command
from dsml.cli.config import explicit_settings
from dsml.cli.options import INTERRUPTED, OK, USER_ERROR, parser


def _doctor(explicit: dict) -> int:
    """``python -m dsml doctor``: print the installation check (it has no flags)."""
    doctor.doctor(verbose=True)
    return OK


COMMANDS = {"train": train_command.run, "score": use_command.score, "predict": use_command.predict, "doctor": _doctor}
PACKAGE = Path(__file__).resolve().parent.parent


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is a mistake in the user's input, written up for them by dsml.

    An ``OSError`` (a path that cannot be read or written) always is. A ``ValueError`` or
    ``TypeError`` is when dsml raised it on purpose: the innermost frame is a ``raise`` line in
    dsml's own code. The same types raised inside torch, numpy or polars, or by a slip in dsml
    (``None + 1``), are bugs: they keep Python's traceback and exit status 1, so they get reported
    and fixed instead of hiding behind a one-line message.
    """
    if isinstance(err, OSError):
        return True
    if not isinstance(err, (ValueError, TypeError)) or err.__traceback__ is None:
        return False
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = Path(tb.tb_frame.f_code.co_filename).resolve()
    inside = PACKAGE in filename.parents
    return inside and linecache.getline(str(filename), tb.tb_lineno).strip().startswith("raise")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    messages.warning(message)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m dsml`` with ``argv`` (default: the command line); return the exit status.

    Exit status: 0 done, 2 a user error (one line on stderr), 3 the loss became NaN, 130 Ctrl-C;
    a bug in dsml raises (Python prints the traceback and exits with 1). ``DSML_DEBUG=1`` in the
    environment shows the traceback of a user error too.

    Example:
        >>> main(["score", "data/mnist_1000.csv", "--weights", "dense.pt"])
        test accuracy: 0.8800
        0
    """
    top = parser()
    args, unknown = top.parse_known_args(argv)
    args = vars(args)
    command = args.pop("command")
    if unknown:  # the command's own parser names the closest of its flags
        top.commands[command].error(f"unrecognized arguments: {' '.join(unknown)}")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _one_line_warning  # restored when the block ends
        try:
            return COMMANDS[command](explicit_settings(command, args))
        except (ValueError, TypeError, OSError) as err:
            if os.environ.get("DSML_DEBUG") or not is_user_error(err):
                raise
            messages.error(err)
            return USER_ERROR
        except KeyboardInterrupt:
            print("dsml: interrupted before anything was saved.", file=sys.stderr)
            return INTERRUPTED
