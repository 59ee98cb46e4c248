"""The soak's verdict (pipeline/tools/soak.py) on made-up samples: each rule can fail."""

from __future__ import annotations

from pipeline.tools.soak import Sample, steady, verdict

RATE = 1000.0


def run(lags: list[int], rss: list[float]) -> list[Sample]:
    return [
        Sample(10.0 * (i + 1), int(RATE * 10 * (i + 1)), lag, mb)
        for i, (lag, mb) in enumerate(zip(lags, rss, strict=True))
    ]


def test_warm_up_is_left_out() -> None:
    samples = run([10_000, 20_000, 500, 400, 600, 300], [300, 350, 480, 480, 482, 481])
    assert [s.seconds for s in steady(samples)] == [30.0, 40.0, 50.0, 60.0]
    assert verdict(samples, RATE, produced=60_000, stored=60_000) == []


def test_each_rule_fails_on_its_own() -> None:
    flat = [480.0] * 8
    growing_lag = run([10_000, 500, 800, 900, 30_000, 45_000, 52_000, 59_000], flat)
    assert any("lag grew" in p for p in verdict(growing_lag, RATE, 80_000, 80_000))
    huge_lag = run([10_000, 61_000, 70_000, 65_000, 62_000, 61_500, 61_000, 70_000], flat)
    assert any("over a minute" in p for p in verdict(huge_lag, RATE, 80_000, 80_000))
    leaking = run([10_000, 500, 500, 500, 500, 500, 500, 500], [480 + 40 * i for i in range(8)])
    assert any("memory grew" in p for p in verdict(leaking, RATE, 80_000, 80_000))
    steady_run = run([10_000, 500, 500, 500, 500, 500, 500, 500], flat)
    assert verdict(steady_run, RATE, 80_000, 80_000) == []
    assert verdict(steady_run, RATE, 80_000, 79_999) == ["80,000 produced but 79,999 stored"]
    never = run([10_000, 20_000, 30_000], [480.0] * 3)
    assert verdict(never, RATE, 30_000, 30_000)[0].startswith("the worker never committed")
