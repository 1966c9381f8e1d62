"""Every flag of ``python -m dsml``, once: its type, default, help and commands.

The same table builds the argparse parsers and checks a ``--config`` file, so a setting means
the same thing on the command line and in the file (``batch-size = 64`` or ``batch_size = 64``).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import dataclass, field
from typing import NoReturn

from dsml.models.pretrained import SMALL_CONVNET_FILES
from dsml.models.registry import CELLS, KINDS

ALL = ("train", "score", "predict")
TRAIN, SCORE, PREDICT = ("train",), ("score",), ("predict",)

# Exit statuses: documented in --help (EPILOG) and docs/cli.md.
OK, BUG, USER_ERROR, DIVERGED, INTERRUPTED = 0, 1, 2, 3, 130

EPILOG = """\
exit status:
  0    done
  1    a bug in dsml (a traceback is printed; please report it)
  2    a user error: a bad flag, path, table or file (one line "dsml: error: ...", no traceback)
  3    training stopped because the loss became NaN or infinite (what was asked for is saved)
  130  interrupted with Ctrl-C (after saving the weights, history, plot and metrics asked for)
"""


@dataclass(frozen=True)
class Option:
    """One flag: ``--name`` on the command line, ``name`` (or ``dest``) in a config file."""

    name: str
    kind: str  # str, int, float, bool, size, strs, choice
    help: str
    commands: tuple[str, ...] = ALL
    default: object = None
    choices: tuple[str, ...] = ()
    metavar: str | tuple[str, ...] | None = None  # a tuple names each value of a flag that takes several
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


OPTIONS = [
    Option(
        "table",
        "str",
        "CSV or parquet table (image, text or sequence rows); score/predict default: "
        "the table the weights were trained on",
        metavar="TABLE",
    ),
    Option("config", "str", "a TOML file of settings (any flag, without --); flags override it", metavar="FILE"),
    # the table's columns
    Option("label", "str", "label column (default: label)", metavar="COLUMN"),
    Option("filepath", "str", "image path column (default: filepath)", metavar="COLUMN"),
    Option("index", "str", "train/test column (default: index)", metavar="COLUMN"),
    Option("size", "size", "resize every image to H x W", metavar=("H", "W")),
    Option("text", "str", "a text table: the column of texts (tokens: lower-case runs of a-z)", metavar="COLUMN"),
    Option("id", "str", "a sequence table: the column naming each series (default: id)", metavar="COLUMN"),
    Option(
        "step",
        "str",
        "a sequence table: the column ordering the steps (default: step)",
        metavar="COLUMN",
        aliases=("--time",),
    ),
    Option(
        "features",
        "strs",
        "a sequence table: the feature columns (default: every numeric column but --id, --step, --label, --index)",
        metavar="COLUMN",
    ),
    Option(
        "max-length", "int", "text: token ids per row (default 200); sequences: steps kept (default: all)", metavar="N"
    ),
    Option("lazy", "bool", "decode images batch by batch instead of all at once (big image tables)"),
    Option(
        "workers", "int", "processes decoding images with --lazy (default: 0, the main process)", TRAIN, metavar="N"
    ),
    Option("device", "str", "cpu, cuda or cuda:N (default: CUDA when available)", metavar="DEVICE"),
    # training
    Option(
        "model",
        "choice",
        "dense, cnn, small_convnet (images; small_convnet: the shipped pretrained backbone, only its new head "
        "trains); textcnn, textrnn (texts); rnn, lstm, gru (sequences); "
        "default: dense, textcnn or lstm for the table",
        TRAIN,
        choices=tuple(KINDS),
        metavar="KIND",
    ),
    Option(
        "backbone",
        "choice",
        "the shipped weights of --model small_convnet: FASHIONMNIST (default; clothes), MNIST (handwritten "
        "digits) or FASHIONMNIST_0_4 (clothes classes 0-4)",
        TRAIN,
        choices=tuple(SMALL_CONVNET_FILES),
        metavar="NAME",
    ),
    Option(
        "head-epochs",
        "int",
        "fine-tune --model small_convnet in two stages: its new head alone for N epochs, then every layer for "
        "--epochs more, the body at --body-lr-factor times --lr (default: only the head trains)",
        TRAIN,
        metavar="N",
    ),
    Option(
        "body-lr-factor",
        "float",
        "with --head-epochs: the body's learning rate in stage 2, relative to --lr (default: 0.1)",
        TRAIN,
        metavar="F",
    ),
    Option("cell", "choice", "the recurrent cell of --model textrnn (default: lstm)", TRAIN, choices=CELLS),
    Option("epochs", "int", "passes over the training rows (default: 20)", TRAIN, 20, metavar="N"),
    Option("batch-size", "int", "rows per update (default: 64)", TRAIN, 64, metavar="N"),
    Option("lr", "float", "learning rate (default: 0.001)", TRAIN, 0.001, metavar="RATE"),
    Option(
        "optimizer",
        "choice",
        "adam, adamw or sgd (with momentum 0.9); default: adam",
        TRAIN,
        "adam",
        choices=("adam", "adamw", "sgd"),
    ),
    Option("seed", "int", "seed for the initial weights, shuffling and splits", TRAIN, metavar="N"),
    Option("valid-fraction", "float", "hold out this fraction of the train rows for validation", TRAIN, metavar="F"),
    Option("patience", "int", "stop after this many epochs without improvement", TRAIN, metavar="N"),
    Option(
        "min-count", "int", "text: keep words seen this often in the training rows (default: 2)", TRAIN, 2, metavar="N"
    ),
    Option(
        "vectors",
        "str",
        "text: word vectors in word2vec format (.txt, .vec or .bin; needs gensim) "
        "instead of a vocabulary learned from the training rows",
        TRAIN,
        metavar="FILE",
    ),
    Option(
        "save", "str", "save the trained weights, network, class names and settings to this file", TRAIN, metavar="FILE"
    ),
    Option(
        "checkpoint",
        "str",
        "keep the best weights and the training state in this file after each epoch",
        TRAIN,
        metavar="FILE",
    ),
    Option("resume", "bool", "continue the run in --checkpoint", TRAIN),
    Option("overwrite", "bool", "let --save/--checkpoint replace a file they would otherwise refuse to", TRAIN),
    Option("history", "str", "write the per-epoch history to this CSV file", TRAIN, metavar="FILE"),
    Option("plot", "str", "draw the training curves to this PNG (or PDF, SVG) file", TRAIN, metavar="FILE"),
    Option("no-progress", "bool", "never show a progress bar", TRAIN),
    # outputs of score and predict
    Option(
        "metrics",
        "str",
        "write final metrics, settings, versions, device and seconds to this JSON file",
        ("train", "score"),
        metavar="FILE",
    ),
    Option("weights", "str", "a file written by train --save or --checkpoint", ("score", "predict"), metavar="FILE"),
    Option("out", "str", "write the predictions to this .csv or .parquet file", PREDICT, metavar="FILE"),
]
BY_NAME = {o.dest: o for o in OPTIONS}

DESCRIPTIONS = {
    "train": "Train one of the chapters' networks on a table's train rows; print train and test accuracy.",
    "score": "Score saved weights on a table's train and test rows. The file holds the network, its input "
    "size and class names, so --weights is all it needs.",
    "predict": "Predict every row of a table (every series of a sequence table) with saved weights: the "
    "table's own columns, prediction_, and one prob_<class> column per class.",
    "doctor": "Check this installation: dsml, torch, torchvision and Python versions, the platform, the device "
    "and threads, where the shipped data come from, and whether each data set and backbone is there "
    "(unpacks and downloads nothing).",
}


def options_for(command: str) -> list[Option]:
    return [o for o in OPTIONS if command in o.commands]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (with the closest flag) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        if "unrecognized arguments" in message:
            known = [s for a in self._actions for s in a.option_strings]
            typed = [w for w in message.split(": ", 1)[-1].split() if w.startswith("-")]
            close = difflib.get_close_matches(typed[0].split("=")[0], known, n=1) if typed else []
            message += f" (did you mean {close[0]}?)" if close else ""
        print(f"dsml: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        sys.exit(USER_ERROR)


def _add(parser: argparse.ArgumentParser, option: Option) -> None:
    if option.name == "table":
        parser.add_argument("table", nargs="?", default=argparse.SUPPRESS, help=option.help, metavar="TABLE")
        return
    flags = [f"--{option.name}", *option.aliases]
    common = {"dest": option.dest, "help": option.help, "default": argparse.SUPPRESS}
    if option.kind == "bool":
        parser.add_argument(*flags, action="store_true", **common)
        return
    types = {"int": int, "float": float, "size": int}
    extra = {"type": types[option.kind]} if option.kind in types else {}
    if option.kind == "size":
        extra["nargs"] = 2
    if option.kind == "strs":
        extra["nargs"] = "+"
    if option.choices:
        extra["choices"] = option.choices
    parser.add_argument(*flags, metavar=option.metavar, **extra, **common)


def parser() -> Parser:
    """The ``python -m dsml`` parser; options not given are absent from the result (config can fill them)."""
    top = Parser(
        prog="python -m dsml",
        allow_abbrev=False,
        description="Train, score and predict with the textbook's networks on tables of images, texts or "
        "sequences. Run `python -m dsml COMMAND --help` for a command's flags.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.commands = {}
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    helps = {"train": "train a network", "score": "score saved weights", "predict": "predict a table's rows",
             "doctor": "check this installation"}  # fmt: skip
    for command in (*ALL, "doctor"):  # doctor has no flags
        cmd = sub.add_parser(
            command,
            help=helps[command],
            description=DESCRIPTIONS[command],
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        for option in options_for(command):
            _add(cmd, option)
        top.commands[command] = cmd
    return top
