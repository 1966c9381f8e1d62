"""``main``: flags and config into settings, a command run, and every ending mapped to an exit status."""

from __future__ import annotations

import os
import sys
import warnings

from dsml import doctor
from dsml.cli import messages, train_command, use_command
from dsml.cli.config import explicit_settings
from dsml.cli.options import INTERRUPTED, OK, USER_ERROR, parser
from dsml.errors import DsmlError


def _doctor(explicit: dict) -> int:
    """``python -m dsml doctor``: print the installation check (it has no flags)."""
    doctor.doctor(verbose=True)
    return OK


COMMANDS = {"train": train_command.run, "score": use_command.score, "predict": use_command.predict, "doctor": _doctor}


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is a mistake in the user's input, written up for them by dsml.

    A ``DsmlError`` is: dsml raised it on purpose, with a message that says what to do. So is any
    ``OSError`` (a path that cannot be read or written). Anything else, also a ``ValueError`` or
    ``TypeError`` raised inside torch, numpy or polars or by a slip in dsml (``None + 1``), is a bug: it
    keeps Python's traceback and exit status 1, so it gets reported and fixed instead of hiding behind a
    one-line message.
    """
    return isinstance(err, (DsmlError, OSError))


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
