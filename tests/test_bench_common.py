"""The benchmarks' shared timing: what a round counts, checked with a fake clock (no wall-clock assertions)."""

from __future__ import annotations

from benchmarks import _common


class Output:
    """A call's result that writes down when it is freed."""

    def __init__(self, log: list) -> None:
        self.log = log

    def __del__(self) -> None:
        self.log.append("freed")


def test_a_round_stops_the_clocks_before_the_calls_output_is_freed(monkeypatch):
    log: list = []
    ticks = iter(range(100))

    def clock() -> float:
        log.append("clock")
        return float(next(ticks))

    monkeypatch.setattr(_common.time, "perf_counter", clock)
    monkeypatch.setattr(_common.time, "process_time", clock)
    wall, cpu = _common.seconds(lambda: Output(log))
    assert log == ["clock", "clock", "clock", "clock", "freed"]  # started both clocks, read both, then freed
    assert (wall, cpu) == (2.0, 2.0)


def test_side_by_side_rotates_the_order_and_drops_the_warmup_rounds(monkeypatch):
    calls: list = []
    monkeypatch.setattr(_common, "seconds", lambda fn: (fn(), (float(len(calls)), 0.0))[1])
    times = _common.side_by_side({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # round 0 (warm-up) a b, then b a, a b, b a
    assert times == {"a": [(4.0, 0.0), (5.0, 0.0), (8.0, 0.0)], "b": [(3.0, 0.0), (6.0, 0.0), (7.0, 0.0)]}
