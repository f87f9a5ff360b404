"""``python -m bench --baseline``: distribution's slot runs dockyard itself, without the
``--observe`` settings or with metrics only, so a ratio is what observing costs. These check what
each slot would start, not how fast it is (``test_smoke`` runs the bench end to end)."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bench.model import Figure, Results, Sample, markdown_table
from bench.servers import DISTRIBUTION, DOCKYARD, Server

from bench import cli, report

HOOK = "http://127.0.0.1:9/hook"


def _bench(tmp_path: Path, baseline: str) -> cli.Bench:
    args = argparse.Namespace(baseline=baseline, workers=2, no_fsync=False)
    return cli.Bench(
        ctx=SimpleNamespace(layout=None),  # type: ignore[arg-type]
        args=args,
        results=Results(),
        runner=None,  # type: ignore[arg-type]
        sampler=None,  # type: ignore[arg-type]
        running={},
        binaries={DOCKYARD: "/opt/dockyard", DISTRIBUTION: "/usr/bin/docker-registry"},
        tls=None,
        receiver=SimpleNamespace(url=HOOK),  # type: ignore[arg-type]
        nginx=None,
        layouts={},
        info={},
        round_errors=[],
    )


def _slots(tmp_path: Path, baseline: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    bench = _bench(tmp_path, baseline)
    observed = bench.server(cli.CONFIGURATIONS["standalone"], DOCKYARD, tmp_path)
    other = bench.server(cli.CONFIGURATIONS["standalone"], DISTRIBUTION, tmp_path)
    return observed.config(), other.config(), other.command(tmp_path / "c.yml")


def test_the_default_baseline_is_distribution_observed_too(tmp_path: Path) -> None:
    observed, other, command = _slots(tmp_path, "distribution")
    assert command == ["/usr/bin/docker-registry", "serve", str(tmp_path / "c.yml")]
    for config in (observed, other):
        assert config["notifications"]["endpoints"][0]["url"] == HOOK
        assert config["http"]["debug"]["prometheus"] == {"enabled": True}
    assert "fsync" not in other["storage"]["filesystem"]


def test_baseline_dockyard_is_dockyard_without_metrics_or_webhook(tmp_path: Path) -> None:
    observed, other, command = _slots(tmp_path, "dockyard")
    assert command[:3] == ["/opt/dockyard", "serve", "--config"]
    assert command[-2:] == ["--workers", "2"]
    assert observed["notifications"]["endpoints"][0]["url"] == HOOK
    assert "notifications" not in other
    assert "debug" not in other["http"]
    assert other["storage"]["filesystem"]["fsync"] is True
    # everything else is what the observed dockyard runs with
    assert other["log"] == observed["log"] and other["version"] == observed["version"]
    assert {**other["storage"], "filesystem": None} == {**observed["storage"], "filesystem": None}


def test_baseline_dockyard_metrics_keeps_the_debug_listener_only(tmp_path: Path) -> None:
    _, other, command = _slots(tmp_path, "dockyard-metrics")
    assert command[0] == "/opt/dockyard"
    assert other["http"]["debug"]["prometheus"] == {"enabled": True}
    assert "notifications" not in other


def test_a_server_with_metrics_alone(tmp_path: Path) -> None:
    server = Server(DOCKYARD, tmp_path, tmp_path / "root", binary="d", workers=1, fsync=False, metrics=True)
    assert server.debug_port and server.config()["http"]["debug"]["addr"].endswith(f":{server.debug_port}")
    assert "notifications" not in server.config()
    plain = Server(DOCKYARD, tmp_path, tmp_path / "root", binary="d", workers=1, fsync=False)
    assert plain.debug_port == 0 and "debug" not in plain.config()["http"]


@pytest.mark.parametrize("configs", [["tls"], ["standalone", "accel"]])
def test_baseline_other_than_distribution_is_standalone_only(
    configs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--baseline", "dockyard", "--configs", *configs]) == 2
    assert "--configs standalone" in capsys.readouterr().err


def test_the_tables_name_what_each_slot_ran() -> None:
    args = argparse.Namespace(baseline="dockyard", observe=True)
    columns, names = report.slot_labels(args)
    assert columns == ("dockyard --observe", "dockyard, plain")
    results = Results()
    figure = Figure("req.x.rps", "requests", "x: throughput", "req/s", True)
    results.add(figure, DOCKYARD, Sample(0, 90.0))
    results.add(figure, DISTRIBUTION, Sample(0, 100.0))
    table = markdown_table(results, [figure.key], columns, names)
    assert table.splitlines()[0].startswith(
        "| Figure | Unit | dockyard --observe | dockyard, plain | ratio (>1 = "
    )
    assert "| 0.90x |" in table
    default = report.slot_labels(argparse.Namespace(baseline="distribution", observe=True))
    assert default == (("dockyard", "distribution 2.8.2"), ("dockyard", "distribution"))


def test_the_command_line_overrides_rounds_load_seconds_and_blob_sizes() -> None:
    quick = cli.params_from(cli._parser().parse_args(["--quick"]))
    assert (quick.rounds, quick.load_seconds) == (2, 1)
    p = cli.params_from(
        cli._parser().parse_args(["--quick", "--rounds", "4", "--load-seconds", "3", "--blob-mib", "2"])
    )
    assert (p.rounds, p.load_seconds, p.push_sizes, p.push_reps) == (4, 3, (2 << 20,), {2 << 20: 1})
    full = cli.params_from(cli._parser().parse_args(["--load-seconds", "5"]))
    assert (full.quick, full.rounds, full.load_seconds) == (False, 3, 5)


@pytest.mark.parametrize("argv", [["--load-seconds", "0"], ["--load-seconds", "-2"], ["--load-seconds", "x"]])
def test_a_load_window_that_is_not_a_positive_number_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli._parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "--load-seconds" in capsys.readouterr().err


def test_a_dockyard_that_is_not_an_executable_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in (tmp_path, tmp_path / "missing"):
        assert cli.main(["--quick", "--dockyard", str(path)]) == 2
        assert f"{path} is not an executable" in capsys.readouterr().err
