"""Run dsml's benchmarks: ``python -m benchmarks [NAME ...] [--repeats N] [--threads N]``.

From the project root; with no names, all six run (about 10 minutes on two
cores; without a CUDA GPU, gpu prints one "skipped" line). Each prints its
contenders side by side with the ratios to its baseline;
``python -m benchmarks NAME --help`` lists a benchmark's own options, which it
takes when it is the one named (``./run bench lazy --images 20000 35000``).

- load: ``load_image`` vs the book's sequential PIL loop with float64 scaling (20,000 PNGs)
- photos: ``table_from_folder`` + ``load_image(size=(128, 128))`` vs torchvision's ``ImageFolder`` pipeline
  (300 JPEG photos)
- score: ``score_image`` vs the whole tensor through the model (SimpleCNN, 20,000 digits)
- train: ``train`` vs a hand-written loop, skorch and Lightning (DenseNet, SimpleCNN)
- lazy: lazy training and scoring (``image_dataset``, 64x64 PNGs) at two collection sizes vs the eager
  tensors' memory, and an epoch vs the torchvision way (PIL, ``DataLoader``, a bare loop)
- gpu: on a CUDA GPU, ``train``, ``score_image`` (60,000 digits) and ``amp=True`` vs hand-written CUDA code,
  and ``torch.compile`` of the bare loop (skipped without a GPU)
"""

from __future__ import annotations

import argparse
import itertools
import sys

from benchmarks import bench_gpu, bench_lazy, bench_load, bench_photos, bench_score, bench_train

BENCHMARKS = {
    "load": bench_load,
    "photos": bench_photos,
    "score": bench_score,
    "train": bench_train,
    "lazy": bench_lazy,
    "gpu": bench_gpu,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    names = list(itertools.takewhile(lambda arg: not arg.startswith("-"), argv))
    if len(names) == 1 and names[0] in BENCHMARKS:  # one benchmark: its own parser reads the options
        print(f"\n=== {names[0]} ===", flush=True)
        BENCHMARKS[names[0]].main(argv[1:])
        return
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME", help=f"which of {', '.join(BENCHMARKS)} (default: all)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds for load, score and train (default 5)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"no benchmark {', '.join(map(repr, unknown))}; choose from {', '.join(BENCHMARKS)}")
    common = (["--repeats", str(args.repeats)] if args.repeats else []) + (
        ["--threads", str(args.threads)] if args.threads else []
    )
    for name in args.names or BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        BENCHMARKS[name].main(common)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
