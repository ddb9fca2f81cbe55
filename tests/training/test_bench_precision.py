"""tools/bench_precision.py: both precisions timed, interleaved, in one table."""

from __future__ import annotations


def test_bench_precision_times_both_precisions(load_tool, capsys) -> None:
    bench = load_tool("bench_precision")
    calls: list[str] = []
    times = bench.time_rounds(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 2, 3
    )
    assert {k: len(v) for k, v in times.items()} == {"a": 2, "b": 2}
    assert calls == ["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["b"] * 4  # rounds alternate

    argv = ["--batch", "1", "--seconds", "0.5", "--rounds", "1", "--steps", "1", "--threads", "1"]
    assert bench.main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| float32", "| bf16-mixed"]
    assert rows[1].endswith("| 1.00x |")
