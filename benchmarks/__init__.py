"""dsml's speed and memory benchmarks: ``python -m benchmarks`` from the project root (see __main__.py)."""
