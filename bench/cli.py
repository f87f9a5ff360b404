"""``python -m bench``: rounds, interleaving, CPU/RSS accounting, tables and JSON."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import data, figures
from bench.cgroups import Hierarchy
from bench.figures import Context, Step
from bench.fronts import TLSFiles, find_nginx, make_certificate
from bench.model import Figure, Results, Sample, fmt
from bench.procstat import RssSampler, client_cpu_seconds, group_pids, group_pss_bytes, group_rss_bytes
from bench.receiver import Receiver
from bench.report import PhaseCpu, report
from bench.servers import (
    DISTRIBUTION,
    DOCKYARD,
    NAMES,
    Server,
    find_distribution,
    find_dockyard,
    free_port,
)
from bench.wrkrun import write_script

PHASES = ("requests", "catalog", "push", "pull", "images")
CONFIGS = ("standalone", "accel", "tls")
BASELINES = ("distribution", "dockyard", "dockyard-metrics")


@dataclass(frozen=True)
class Configuration:
    """How both registries are deployed for some of the phases: ``standalone`` (plain HTTP, all
    phases), ``accel`` (dockyard behind nginx with the accelerated download path, against
    distribution standalone: pulls) and ``tls`` (both terminating TLS with one certificate: pushes
    and pulls). Its figures' keys start with ``prefix``."""

    name: str
    prefix: str
    label: str
    phases: tuple[str, ...]


CONFIGURATIONS = {
    "standalone": Configuration("standalone", "", "", PHASES),
    "accel": Configuration("accel", "accel.", "[nginx + accel] ", ("pull",)),
    "tls": Configuration("tls", "tls.", "[TLS] ", ("push", "pull")),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes and counts, 2 rounds (< 3 minutes)")
    p.add_argument("--json", metavar="FILE", help="also write all results (every round) as JSON")
    p.add_argument(
        "--only", nargs="+", choices=PHASES, metavar="FIGURE", help=f"only these: {', '.join(PHASES)}"
    )
    p.add_argument("--rounds", type=int, help="rounds (each measures both servers; default 2 quick, 3 full)")
    p.add_argument(
        "--tmpdir",
        help="where storage roots and blob files go (default: /dev/shm if present, else the system temp dir)",
    )
    p.add_argument("--workers", type=int, default=2, help="dockyard worker processes (default 2)")
    p.add_argument(
        "--load-seconds",
        type=_positive,
        metavar="S",
        help="how long each request figure's load runs (default 1 quick, 2 full); longer windows "
        "steady the p99 rows",
    )
    p.add_argument(
        "--dockyard",
        metavar="PATH",
        help="the dockyard executable to measure, e.g. another checkout's .venv/bin/dockyard "
        "(default: this repository's); see python -m bench.compare",
    )
    p.add_argument(
        "--blob-mib",
        type=int,
        nargs="+",
        metavar="MIB",
        help="blob sizes (MiB) of the push and pull figures instead of the defaults, e.g. 1024",
    )
    p.add_argument(
        "--no-fsync", action="store_true", help="run dockyard with storage.filesystem.fsync: false"
    )
    p.add_argument(
        "--observe",
        action="store_true",
        help="both registries with Prometheus metrics on and one webhook endpoint getting every event",
    )
    p.add_argument(
        "--baseline",
        choices=BASELINES,
        default="distribution",
        help="what the second slot runs: distribution (default), or dockyard itself without the "
        "--observe settings (dockyard) or with metrics only (dockyard-metrics), so that the ratios "
        "are what observing costs; standalone only",
    )
    p.add_argument(
        "--configs",
        nargs="+",
        choices=CONFIGS,
        metavar="CONFIG",
        help=f"deployments to measure: {', '.join(CONFIGS)} (default all)",
    )
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def default_tmpdir() -> str:
    return (
        "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    )


class Runner:
    def __init__(
        self, ctx: Context, results: Results, sampler: RssSampler, receiver: Receiver | None = None
    ) -> None:
        self.ctx = ctx
        self.results = results
        self.sampler = sampler
        # --observe: after each step the webhook deliveries it set off are waited out (their
        # server CPU counted apart, as ``drain_cpu``), so the next step is timed on its own.
        self.receiver = receiver
        # phase -> server -> list per round of {server_cpu, client_cpu, wall, work}
        self.phase_cpu: PhaseCpu = {}

    def run_phase(
        self, phase: str, steps: list[Step], servers: dict[str, Server], order: list[str], rnd: int, tag: str
    ) -> None:
        self.sampler.set_phase(tag)
        keys = ("server_cpu", "client_cpu", "wall", "work", "drain_cpu", "drain_wall")
        totals = {n: dict.fromkeys(keys, 0.0) for n in order}
        for step in steps:
            for fig in step.figures:
                self.results.declare(fig)
            for name in order:
                server = servers[name]
                try:
                    if step.setup is not None:
                        step.setup(server)
                    cpu0, client0, t0 = (
                        server.cpu_seconds(),
                        client_cpu_seconds(),
                        time.perf_counter(),
                    )
                    out = step.fn(server)
                    wall = time.perf_counter() - t0
                    totals[name]["server_cpu"] += server.cpu_seconds() - cpu0
                    totals[name]["client_cpu"] += client_cpu_seconds() - client0
                    totals[name]["wall"] += wall
                    totals[name]["work"] += float(out.get("_work", 0))
                    if self.receiver is not None and server.webhook:
                        cpu1, t1 = server.cpu_seconds(), time.perf_counter()
                        self.receiver.settle()
                        totals[name]["drain_cpu"] += server.cpu_seconds() - cpu1
                        totals[name]["drain_wall"] += time.perf_counter() - t1
                    extra = dict(out.get("_extra", {}))
                    for fig in step.figures:
                        self.results.add(fig, name, Sample(rnd, float(out[fig.key]), None, extra))
                    status = " ".join(f"{fig.key.split('.')[-1]}={fmt(out[fig.key])}" for fig in step.figures)
                except Exception as exc:
                    msg = f"{type(exc).__name__}: {exc}"
                    for fig in step.figures:
                        self.results.add(fig, name, Sample(rnd, None, msg))
                    status = f"FAILED {msg[:300]}"
                    if os.environ.get("BENCH_DEBUG"):
                        traceback.print_exc()
                print(f"  r{rnd} {step.name:<40} {name:<12} {status}", flush=True)
        for name in order:
            self.phase_cpu.setdefault(phase, {n: [] for n in NAMES})[name].append(
                {"round": rnd, **totals[name]}
            )


def install_layout(src: Path, dst: Path, parts: list[str]) -> None:
    for part in parts:
        target = dst / part
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src / part, target)


def layout_parts(layout: data.Layout) -> list[str]:
    v2 = "docker/registry/v2"
    parts = [f"{v2}/repositories/{data.CATALOG_PREFIX}", f"{v2}/repositories/bench"]
    image = data.make_image(-1, layer_size=2048)
    for digest in [d for d, _ in image.blobs] + [layout.manifest_digest]:
        hexd = digest.split(":", 1)[1]
        parts.append(f"{v2}/blobs/sha256/{hexd[:2]}/{hexd}")
    return parts


def prepare(ctx: Context, only: set[str]) -> None:
    p = ctx.params
    t0 = time.perf_counter()
    if only & {"push", "pull"}:
        blob_dir = ctx.workdir / "blobs"
        blob_dir.mkdir()
        seed = 0
        for size in p.push_sizes:
            for mode in ("monolithic", "chunked"):
                for i in range(p.push_reps[size]):
                    seed += 1
                    ctx.blobs[(size, mode, i)] = data.make_blob_file(
                        blob_dir / f"{size}-{mode}-{i}", size, seed
                    )
    if "images" in only:
        ctx.images = [data.make_image(i) for i in range(p.images)]
    print(f"prepared blob files and images in {time.perf_counter() - t0:.1f}s", flush=True)


@dataclass
class Bench:
    """What every round needs: the measured work, the binaries, where results go."""

    ctx: Context
    args: argparse.Namespace
    results: Results
    runner: Runner
    sampler: RssSampler
    running: dict[str, Server]
    binaries: dict[str, str]
    tls: TLSFiles | None
    receiver: Receiver | None
    nginx: str | None
    layouts: dict[str, Path]
    info: dict[str, Any]
    round_errors: list[str]
    cgroups: Hierarchy | None = None

    def steps(self, config: Configuration, only: set[str]) -> dict[str, list[Step]]:
        ctx, c = self.ctx, config
        if c.name == "standalone":
            return {
                "requests": figures.request_steps(ctx) if "requests" in only else [],
                "catalog": figures.catalog_steps(ctx) if "catalog" in only else [],
                "push": figures.push_steps(ctx) if "push" in only else [],
                "pull": figures.pull_steps(ctx) if "pull" in only else [],
                "images": figures.image_steps(ctx) if "images" in only else [],
            }
        return {
            "push": figures.push_steps(ctx, c.prefix, c.label, ctx.params.tls_push_reps)
            if "push" in only
            else [],
            "pull": figures.pull_steps(ctx, c.prefix, c.label) if "pull" in only else [],
        }

    def server(self, config: Configuration, name: str, round_dir: Path) -> Server:
        root = round_dir / f"{config.name}-{name}-root"
        root.mkdir()
        if config.name == "standalone" and self.ctx.layout is not None:
            install_layout(self.layouts[name], root, layout_parts(self.ctx.layout))
        # --baseline dockyard[-metrics]: distribution's slot runs dockyard without the --observe
        # settings (standalone only, so no TLS or nginx either way)
        plain = name == DISTRIBUTION and self.args.baseline != "distribution"
        return Server(
            name,
            round_dir,
            root,
            binary=self.binaries[DOCKYARD if plain else name],
            workers=self.args.workers,
            fsync=not self.args.no_fsync,
            tls=self.tls if config.name == "tls" else None,
            nginx=self.nginx if config.name == "accel" and name == DOCKYARD else None,
            webhook=self.receiver.url if self.receiver is not None and not plain else None,
            metrics=self.args.baseline == "dockyard-metrics" if plain else None,
            kind=DOCKYARD if plain else None,
            cgroups=self.cgroups,
        )

    def run(self, config: Configuration, only: set[str], rnd: int, round_dir: Path) -> None:
        """One configuration in one round: both servers started fresh, every phase interleaved."""
        order = list(NAMES) if rnd % 2 == 0 else list(reversed(NAMES))
        only = only & set(config.phases)
        extra = self.ctx.params.extra_rounds
        if not only or (config.name != "standalone" and extra is not None and rnd >= extra):
            return
        print(f"round {rnd + 1}/{self.ctx.params.rounds} {config.name}: order {', '.join(order)}", flush=True)
        servers = {name: self.server(config, name, round_dir) for name in order}
        tag = f"{rnd}/{config.name}"
        idle = Figure(
            f"{config.prefix}mem.idle",
            "memory",
            f"{config.label}server RSS after start (all processes)",
            "MiB",
            False,
        )
        peak_fig = Figure(
            f"{config.prefix}mem.peak",
            "memory",
            f"{config.label}server peak RSS during the round (all processes)",
            "MiB",
            False,
        )
        # Summed RSS counts a page the workers share with their parent once per process; the
        # proportional set size divides it among them, so the sum is the memory the server holds.
        idle_pss = Figure(
            f"{config.prefix}mem.idle.pss",
            "memory",
            f"{config.label}server PSS after start (all processes, shared pages counted once)",
            "MiB",
            False,
        )
        peak_pss = Figure(
            f"{config.prefix}mem.peak.pss",
            "memory",
            f"{config.label}server peak PSS during the round (all processes, shared pages counted once)",
            "MiB",
            False,
        )
        # What the kernel charges: each server in a memory cgroup of its own (bench.cgroups).
        idle_charged = Figure(
            f"{config.prefix}mem.idle.charged",
            "memory",
            f"{config.label}server anonymous memory charged to its cgroup after start",
            "MiB",
            False,
        )
        peak_charged = Figure(
            f"{config.prefix}mem.peak.charged",
            "memory",
            f"{config.label}server peak anonymous memory charged to its cgroup during the round",
            "MiB",
            False,
        )
        try:
            self.sampler.set_phase(f"{tag}/start")
            try:
                for name in order:
                    servers[name].start()
                    self.running[name] = servers[name]
                self.sampler.update_groups()
            except RuntimeError as exc:
                print(f"round {rnd + 1} {config.name}: a server did not start, skipped: {exc}", flush=True)
                self.round_errors.append(f"round {rnd + 1} {config.name}: {exc}")
                return
            time.sleep(1.0)
            for name in order:
                pids = [pid for g in servers[name].pgids for pid in group_pids(g)]
                self.results.add(idle, name, Sample(rnd, group_rss_bytes(pids) / 2**20, None, {}))
                self.results.add(idle_pss, name, Sample(rnd, group_pss_bytes(pids) / 2**20, None, {}))
                cgroup = servers[name].cgroup
                if cgroup is not None:
                    charged_now = cgroup.charged_bytes() / 2**20
                    self.results.add(idle_charged, name, Sample(rnd, charged_now, None, {}))
            steps = self.steps(config, only)
            for phase in PHASES:
                if steps.get(phase):
                    self.runner.run_phase(
                        f"{config.prefix}{phase}", steps[phase], servers, order, rnd, f"{tag}/{phase}"
                    )
            self.sampler.set_phase(f"{tag}/end")
            peaks, pss_peaks = self.sampler.peaks, self.sampler.pss_peaks
            charged_peaks = self.sampler.charged_peaks
            for name in order:
                peak = max(v for (n, ph), v in peaks.items() if n == name and ph.startswith(f"{tag}/"))
                self.results.add(peak_fig, name, Sample(rnd, peak / 2**20, None, {}))
                pss = max(v for (n, ph), v in pss_peaks.items() if n == name and ph.startswith(f"{tag}/"))
                self.results.add(peak_pss, name, Sample(rnd, pss / 2**20, None, {}))
                charged = [
                    v for (n, ph), v in charged_peaks.items() if n == name and ph.startswith(f"{tag}/")
                ]
                if charged:
                    self.results.add(peak_charged, name, Sample(rnd, max(charged) / 2**20, None, {}))
                for phase in PHASES:
                    ph_peak = peaks.get((name, f"{tag}/{phase}"), 0)
                    if ph_peak:
                        self.runner.phase_cpu[f"{config.prefix}{phase}"][name][-1]["peak_rss_mib"] = (
                            ph_peak / 2**20
                        )
                if config.name == "standalone" and "version" not in self.info.get(name, {}):
                    self.info.setdefault(name, {})["log_tail"] = servers[name].log_tail(1500)
        finally:
            for name in order:
                servers[name].stop()
                self.running.pop(name, None)
            if config.name == "standalone" and self.ctx.layout is not None:
                for name in order:
                    root = round_dir / f"{config.name}-{name}-root"
                    install_layout(root, self.layouts[name], layout_parts(self.ctx.layout))
            for name in order:
                shutil.rmtree(servers[name].root, ignore_errors=True)


def params_from(args: argparse.Namespace) -> figures.Params:
    """The quick or full parameters, with what the command line overrides."""
    p = figures.params(args.quick)
    if args.rounds:
        p.rounds = args.rounds
    if args.load_seconds:
        p.load_seconds = args.load_seconds
    if args.blob_mib:
        sizes = tuple(m * data.MiB for m in args.blob_mib)
        p.push_sizes = sizes
        p.push_reps = {s: p.push_reps.get(s, 1) for s in sizes}
        p.tls_push_reps = {max(sizes): 1}
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    p = params_from(args)
    only = set(args.only or PHASES)
    configs = [CONFIGURATIONS[c] for c in (args.configs or CONFIGS)]
    if args.baseline != "distribution" and [c.name for c in configs] != ["standalone"]:
        print("bench: --baseline other than distribution needs --configs standalone", file=sys.stderr)
        return 2
    dockyard_bin, dist_bin = args.dockyard or find_dockyard(), find_distribution()
    if not (os.path.isfile(dockyard_bin) and os.access(dockyard_bin, os.X_OK)):
        print(f"bench: {dockyard_bin} is not an executable", file=sys.stderr)
        return 2
    for tool in ("wrk", "ab", "curl"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed (make debs)", file=sys.stderr)
            return 2
    nginx = find_nginx()
    if nginx is None and any(c.name == "accel" for c in configs):
        print("bench: nginx is not installed (make debs)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir=args.tmpdir or default_tmpdir()))
    need = sum(p.push_reps[s] * s * 2 for s in p.push_sizes) * 3
    free = shutil.disk_usage(tmp).free
    print(
        f"bench: {'quick' if p.quick else 'full'} run, {p.rounds} rounds, "
        f"configurations {', '.join(c.name for c in configs)}, data in {tmp} "
        f"(needs ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free)",
        flush=True,
    )
    if need > free:
        print("bench: not enough space for the blob files and both storage roots", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        return 2
    ctx = Context(params=p, workdir=tmp, lua=write_script(tmp))
    results = Results()
    running: dict[str, Server] = {}
    sampler = RssSampler(
        lambda: {n: s.pgids for n, s in list(running.items()) if s.proc is not None},
        cgroups=lambda: {n: s.cgroup for n, s in list(running.items()) if s.cgroup is not None},
    )
    cgroups = Hierarchy.find()
    receiver = Receiver(free_port()).start() if args.observe else None
    bench = Bench(
        ctx=ctx,
        args=args,
        results=results,
        runner=Runner(ctx, results, sampler, receiver),
        sampler=sampler,
        running=running,
        binaries={DOCKYARD: dockyard_bin, DISTRIBUTION: dist_bin},
        tls=make_certificate(tmp / "tls") if any(c.name == "tls" for c in configs) else None,
        receiver=receiver,
        nginx=nginx,
        layouts={},
        info={"memory_cgroups": cgroups.describe() if cgroups is not None else None},
        round_errors=[],
        cgroups=cgroups,
    )
    try:
        prepare(ctx, only)
        if only & {"requests", "catalog"} and any(c.name == "standalone" for c in configs):
            t0 = time.perf_counter()
            for name in NAMES:  # one copy per server, moved into each round's fresh root
                bench.layouts[name] = tmp / f"layout-{name}"
                ctx.layout = data.build_layout(bench.layouts[name], p.catalog_repos, p.tags)
            print(
                f"wrote the on-disk layout ({p.catalog_repos:,} repos, {p.tags:,} tags) "
                f"twice in {time.perf_counter() - t0:.1f}s",
                flush=True,
            )
        sampler.start()
        for rnd in range(p.rounds):
            round_dir = tmp / f"round{rnd}"
            round_dir.mkdir()
            for config in configs:
                bench.run(config, only, rnd, round_dir)
            shutil.rmtree(round_dir, ignore_errors=True)
    except KeyboardInterrupt:
        print("interrupted; reporting what was measured", file=sys.stderr)
    finally:
        sampler.stop()
        for server in list(running.values()):
            server.stop()
        if bench.receiver is not None:
            bench.info["webhook_events_received"] = bench.receiver.count()
            bench.receiver.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - started
    bench.info["round_errors"] = bench.round_errors
    bench.info["dockyard_binary"] = dockyard_bin
    bench.info["configurations"] = args.configs or list(CONFIGS)
    bench.info["storage"] = args.tmpdir or default_tmpdir()
    report(results, bench.runner.phase_cpu, p, args, wall, dist_bin, bench.info)
    return 0
