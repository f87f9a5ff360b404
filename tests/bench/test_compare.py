"""``python -m bench.compare``: which figures a change made worse beyond the bench's noise, and how
many identical code would score by the same rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench.compare import compare, compare_figure, load_run, main, self_comparisons
from hypothesis import given
from hypothesis import strategies as st


def _doc(ratios: dict[str, float | None]) -> dict[str, Any]:
    return {"figures": [{"key": k, "ratio": r, "median": {}} for k, r in ratios.items()]}


def _write(tmp_path: Path, name: str, ratios: dict[str, float | None]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(_doc(ratios)))
    return path


def test_a_fall_beyond_the_base_spread_is_below_noise() -> None:
    row = compare_figure("push", [2.0, 1.8], [1.5, 1.6])
    assert row.noise == pytest.approx(0.1)  # (2.0 - 1.8) / 2.0
    assert row.change == pytest.approx(1.55 / 1.9)
    assert row.below and row.all_below


def test_a_fall_within_the_base_spread_is_not() -> None:
    row = compare_figure("p99", [10.0, 6.0], [7.0, 7.5])  # the base moved by 40 % on its own
    assert row.noise == pytest.approx(0.4)
    assert not row.below and not row.all_below


def test_the_noise_is_never_under_five_percent() -> None:
    assert compare_figure("rss", [1.0, 1.0], [0.96, 0.96]).noise == 0.05
    assert not compare_figure("rss", [1.0, 1.0], [0.96, 0.96]).below
    assert compare_figure("rss", [1.0, 1.0], [0.94, 0.94]).below


def test_below_on_the_mean_but_overlapping_runs_is_not_all_below() -> None:
    row = compare_figure("x", [1.0, 1.0, 1.0, 1.0], [0.7, 0.7, 0.7, 1.05])
    assert row.below and not row.all_below


def test_only_figures_every_run_has_are_compared(tmp_path: Path) -> None:
    base = [{"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.0}]
    head = [{"b": 2.0, "a": 1.0}, {"a": 1.0, "b": 2.0, "d": 1.0}]
    assert [r.key for r in compare(base, head)] == ["a", "b"]


def test_figures_without_a_ratio_are_left_out(tmp_path: Path) -> None:
    path = _write(tmp_path, "run.json", {"req.v2.c1.rps": 5.0, "failed": None, "zero": 0.0})
    assert load_run(path) == {"req.v2.c1.rps": 5.0}


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "not JSON"), ("[]", "no figures list"), ('{"figures": 3}', "no figures list")],
)
def test_a_file_that_is_not_a_bench_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    good = _write(tmp_path, "good.json", {"a": 1.0})
    assert main(["--base", str(bad), "--head", str(good)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err


def test_no_common_figure_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _write(tmp_path, "a.json", {"a": 1.0}), _write(tmp_path, "b.json", {"b": 1.0})
    assert main(["--base", str(a), "--head", str(b)]) == 2
    assert "no figure is in every file" in capsys.readouterr().err


def test_self_comparisons_split_one_build_every_way() -> None:
    runs = [{"x": 1.0}, {"x": 1.0}, {"x": 0.5}, {"x": 0.5}]
    # halves {0,1}|{2,3} and {2,3}|{0,1} differ by 2x; the four mixed splits do not.
    counts = self_comparisons(runs, ["x"])
    assert len(counts) == 6
    assert sorted(counts) == [0, 0, 0, 0, 0, 1]  # only {0,1} as base, {2,3} as head, is a fall
    assert self_comparisons(runs[:1], ["x"]) == []


def test_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        _write(tmp_path, f"base-{i}.json", {"req.v2.c1.rps": 10.0 + i, "mem.idle": 0.20, "push.cpu": 2.0})
        for i in range(4)
    ]
    head = [
        _write(tmp_path, f"head-{i}.json", {"req.v2.c1.rps": 13.0 + i, "mem.idle": 0.17, "push.cpu": 2.02})
        for i in range(4)
    ]
    assert main(["--base", *map(str, base), "--head", *map(str, head)]) == 0
    out = capsys.readouterr().out
    assert "4 base runs, 4 head runs, 3 figures" in out
    assert "| mem.idle | 0.20 0.20 0.20 0.20 | 0.17 0.17 0.17 0.17 | **0.85** | 5 % |" in out
    assert "below noise: 1 of 3; of them every head run below every base run: 1" in out
    # Runs 3 and 4 (12, 13) as the base and 1 and 2 (10, 11) as the head: 0.84, beyond 1/13's spread.
    assert "base against itself, halves of 2 runs, 6 splits: 0, 0, 0, 0, 0, 1 below noise" in out
    assert "head against itself, halves of 2 runs, 6 splits: 0, 0, 0, 0, 0, 1 below noise" in out
    assert "geometric mean of the changes: 1.261" in out  # 14.5 / 11.5
    assert "One base run has no spread" not in out


def test_one_base_run_is_reported_as_having_no_spread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _write(tmp_path, "a.json", {"a": 1.0}), _write(tmp_path, "b.json", {"a": 1.0})
    assert main(["--base", str(a), "--head", str(b)]) == 0
    assert "One base run has no spread" in capsys.readouterr().out


ratios = st.floats(min_value=0.01, max_value=1000, allow_nan=False, allow_infinity=False)
runs = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), ratios, min_size=3, max_size=3), min_size=1, max_size=6
)


@given(runs)
def test_a_build_compared_with_its_own_runs_has_nothing_below_noise(rs: list[dict[str, float]]) -> None:
    rows = compare(rs, rs)
    assert all(r.change == pytest.approx(1.0) and not r.below for r in rows)


@given(runs, st.floats(min_value=0.01, max_value=0.5))
def test_every_figure_scaled_down_by_more_than_its_noise_is_below(
    rs: list[dict[str, float]], factor: float
) -> None:
    for r in compare(rs, [{k: v * factor for k, v in run.items()} for run in rs]):
        assert r.change == pytest.approx(factor)
        if abs(factor - (1 - r.noise)) < 1e-9:
            continue  # on the boundary the mean's rounding decides
        assert r.below == (factor < 1 - r.noise)
        assert r.all_below == (r.below and factor * max(r.base) < min(r.base))
