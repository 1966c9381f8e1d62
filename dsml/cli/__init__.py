"""The shell: ``python -m dsml train|score|predict ...`` (and the ``dsml`` command).

``main`` parses the flags (over a ``--config`` file), runs the command and turns a user's
mistake into one line on stderr and exit status 2; see ``options.EPILOG`` for every status.
Modules: ``app`` (``main`` and the exit statuses), ``options`` (every flag), ``config`` (TOML
settings), ``messages`` (one-line errors in the words of the flags), ``tables``/``textseq``
(tables in), ``outputs`` (files out), ``common``, ``train_command`` and ``use_command``.
"""

from dsml.cli.app import main

__all__ = ["main"]
