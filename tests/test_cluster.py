"""Sweeps over a Ray cluster (``sweep --cluster``): a cluster of several nodes started on this
machine with Ray's test utilities (a raylet per node, each with its CPUs, labels and its own
cache folder, as separate machines would have), the sweep run by the CLI as a driver.

What this proves and what it does not: docs/cluster.md ("The local-cluster test").
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest

from inferspeed.errors import ConfigError
from inferspeed.facts.models import add_model
from inferspeed.report.cluster import host_rows, parse_cost, render_hosts
from inferspeed.results.sweepfile import SweepLine, fold_hosts
from inferspeed.tools.cluster import entry_key, host_names, parse_cluster, select_nodes

from .child_events import HANG_TIMEOUT, Events

#: 2 x 2 x 2 = 8 cells, each short: the test is about where and when cells run, not their times.
GRID = ("--threads", "1,2", "--batch", "1,2", "--mode", "binding,run", "-t", "0.1", "--warmup", "0.02")
#: The lost-node test's grid: cells long enough (0.6 s timed) that the node is killed while the
#: cell whose start it waited for still measures, however busy the machine.
LONG_GRID = (*GRID[:-4], "-t", "0.6", "--warmup", "0.02")
LABELS = {"a": {"instance": "a", "accelerator": "cpu"}, "b": {"instance": "b", "accelerator": "cpu"}}


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferspeed", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class LocalCluster:
    """A head node without CPUs (it measures nothing, as on a real cluster) and two measuring
    nodes of one CPU each, labelled instance=a / instance=b, each with a cache of its own."""

    def __init__(self, root: Path) -> None:
        cluster_utils = pytest.importorskip(
            "ray.cluster_utils", reason="Ray is not installed (pip install 'inferspeed[ray]')"
        )
        self.root = root
        self.events = Events(root / "events.jsonl")
        # Health checks every 0.5 s: a killed node is declared dead in ~1.5 s, not ~30 s.
        fast = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}
        self.cluster = cluster_utils.Cluster(
            initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": fast}
        )
        self.nodes = {name: self.add(name) for name in LABELS}

    def add(self, name: str) -> Any:
        env = {
            "INFERSPEED_CACHE_DIR": str(self.root / f"cache-{name}"),
            "INFERSPEED_EVENTS": str(self.events.path),
        }
        return self.cluster.add_node(num_cpus=1, labels=LABELS[name], env_vars=env)

    def env(self) -> dict[str, str]:
        return self.events.env({**os.environ, "RAY_ADDRESS": self.cluster.address})

    def kill_raylet(self, name: str) -> None:
        """SIGKILL to the node's raylet (reaped, so that its workers see it gone)."""
        node = self.nodes[name]
        raylet = node.all_processes["raylet"][0].process
        raylet.send_signal(signal.SIGKILL)
        raylet.wait(timeout=30)
        self.cluster.remove_node(node, allow_graceful=False)  # the node's other processes
        self.cluster.wait_for_nodes()  # until the head sees it dead


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("ray"))
    try:
        yield local
    finally:
        local.cluster.shutdown()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cluster-model") / "add.onnx"
    onnx.save(add_model(16, "batch"), path)
    return str(path)


def _one_at_a_time(name: str, group: list[dict[str, Any]]) -> None:
    """No two cells of ``group`` ran at once: by the node's clock, each started after the one
    before it ended."""
    spans = sorted((g["host"]["started"], g["host"]["ended"]) for g in group)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, f"two cells ran at once on {name}: {spans}"


def _check_every_node(lines: list[dict[str, Any]]) -> None:
    """16 lines: each of the 8 cells once on each node, with the node's labels; on one node no
    two cells overlap (the node's clock at each cell's start and end)."""
    assert len(lines) == 16, [line.get("error") for line in lines]
    assert all("error" not in line for line in lines), [line["error"] for line in lines if "error" in line]
    by_host: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_host.setdefault(line["host"]["name"], []).append(line)
    assert sorted(by_host) == ["accelerator=cpu,instance=a", "accelerator=cpu,instance=b"]
    for name, group in by_host.items():
        assert {json.dumps(g["cell"], sort_keys=True) for g in group}.__len__() == 8
        assert {g["host"]["labels"]["instance"] for g in group} == {name[-1]}
        assert len({g["host"]["node_id"] for g in group}) == 1
        _one_at_a_time(name, group)
        # The model went to this node once (its own cache), not once per cell.
        assert sorted(g["host"]["model"] for g in group) == ["cached"] * 7 + ["fetched"]
        assert group[0]["result"]["environment"]["cpu"]["logical_cores"] == os.cpu_count()
        assert {g["host"]["reserved"]["CPU"] for g in group} == {1.0}


def test_every_node_runs_the_grid_on_each_node(cluster: LocalCluster, model: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep.jsonl"
    address = f"ray://{cluster.cluster.address}"
    p = _cli(
        "sweep", model, *GRID, "--out", str(out), "--cluster", address, "--every-node", env=cluster.env()
    )
    assert p.returncode == 0, p.stderr[-3000:]
    _check_every_node(_lines(out))
    assert "By host" in p.stdout and "instance=a" in p.stdout
    # The report: one table by host, with the cost per item, and one plot.
    r = _cli("report", str(out), "--cost-per-hour", "a=0.5", "--cost-per-hour", "instance=b=0.25")
    assert r.returncode == 0, r.stderr
    assert "By host" in r.stdout and "cheapest" in r.stdout and "$/1M items" in r.stdout
    png = tmp_path / "png"
    r = _cli("report", str(out), "--png", str(png))
    assert r.returncode == 0, r.stderr
    assert any("hosts" in f.name for f in png.iterdir()), sorted(f.name for f in png.iterdir())


def test_without_every_node_each_cell_runs_once_on_a_free_node(
    cluster: LocalCluster, model: str, tmp_path: Path
) -> None:
    out = tmp_path / "sweep.jsonl"
    grid = ("--threads", "1,2", "--batch", "1,2", "-t", "0.1", "--warmup", "0.02")
    p = _cli("sweep", model, *grid, "--out", str(out), "--cluster", "ray", env=cluster.env())
    assert p.returncode == 0, p.stderr[-3000:]
    lines = _lines(out)
    assert sorted(json.dumps(x["cell"], sort_keys=True) for x in lines) == sorted(
        json.dumps({"threads": t, "batch": b}, sort_keys=True) for t in (1, 2) for b in (1, 2)
    )
    hosts = {x["host"]["labels"]["instance"] for x in lines}
    assert hosts <= {"a", "b"}
    for name in hosts:
        _one_at_a_time(name, [x for x in lines if x["host"]["labels"]["instance"] == name])


def _wait_for_cell(events: Events, skip: int, host: str, index: int, proc: subprocess.Popen[str]) -> None:
    """Until the node ``host`` reports that its task for cell ``index`` started (events after
    the first ``skip``): a hang guard only, never a timing."""
    import time

    give_up = time.monotonic() + HANG_TIMEOUT
    while time.monotonic() < give_up:
        found = [e for e in events.read()[skip:] if e["event"] == "node_cell"]
        if any(e["host"].endswith(host) and e["index"] == index for e in found):
            return
        assert proc.poll() is None, f"the sweep ended first: {proc.stderr.read() if proc.stderr else ''}"
        time.sleep(0.05)
    raise AssertionError(f"no node_cell event of {host} for cell {index}: {events.names()[skip:]}")


def test_a_lost_node_fails_its_cell_and_resume_runs_only_what_is_missing(
    cluster: LocalCluster, model: str, tmp_path: Path
) -> None:
    """Runs after the test above (it kills a node of the shared cluster)."""
    out = tmp_path / "sweep.jsonl"
    args = [
        "sweep",
        model,
        *LONG_GRID,
        "--out",
        str(out),
        "--cluster",
        "ray",
        "--every-node",
        "--on",
        "accelerator=cpu",
    ]
    skip = len(cluster.events.read())
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferspeed", *args], env=cluster.env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_cell(cluster.events, skip, "instance=b", 2, proc)  # b's third cell has started
        cluster.kill_raylet("b")
        _, stderr = proc.communicate(timeout=HANG_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr[-3000:]
    lines = _lines(out)
    a = [x for x in lines if x["host"]["labels"]["instance"] == "a"]
    b = [x for x in lines if x["host"]["labels"]["instance"] == "b"]
    assert len(a) == 8 and all("error" not in x for x in a), [x.get("error") for x in a]
    # b: two cells measured, the third failed with the reason; the other five never started.
    assert [x.get("lost", False) for x in b] == [False, False, True], b
    assert "was lost while it measured this cell" in b[2]["error"] and b[2]["cell"] == a[2]["cell"]
    # The failed cell and the five not run are named, and the exit status says so.
    assert "6 of 16 cells failed" in stderr.splitlines()[-1], stderr[-2000:]

    cluster.nodes["b"] = cluster.add("b")  # the node back (a new raylet, the same labels)
    cluster.cluster.wait_for_nodes()
    p = _cli(
        "sweep",
        model,
        *LONG_GRID,
        "--out",
        str(out),
        "--cluster",
        "ray",
        "--every-node",
        "--resume",
        env=cluster.env(),
    )
    assert p.returncode == 0, p.stderr[-3000:]
    measured = [line for line in p.stderr.splitlines() if line.startswith("[")]
    assert len(measured) == 6 and all("instance=b" in line for line in measured), measured
    after = _lines(out)
    assert after[: len(lines)] == lines and len(after) == len(lines) + 6
    last = {entry_key(SweepLine.from_dict(x), True): x for x in after}
    _check_every_node_after_resume(list(last.values()))


def _check_every_node_after_resume(lines: list[dict[str, Any]]) -> None:
    assert len(lines) == 16 and all("error" not in x for x in lines)
    for name in ("a", "b"):
        group = [x for x in lines if x["host"]["labels"]["instance"] == name]
        assert len(group) == 8
        _one_at_a_time(name, group)


def test_without_cluster_the_sweep_is_local_and_unchanged(model: str, tmp_path: Path) -> None:
    out = tmp_path / "local.jsonl"
    p = _cli("sweep", model, "--threads", "1,2", "-t", "0.05", "--warmup", "0.01", "--out", str(out))
    assert p.returncode == 0, p.stderr
    lines = _lines(out)
    assert [x["cell"] for x in lines] == [{"threads": 1}, {"threads": 2}]
    assert all(set(x) == {"cell", "result"} for x in lines)  # no host, no environment: as before
    assert "By host" not in p.stdout


def test_unreachable_address_is_one_line(model: str, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'inferspeed[ray]')")
    p = _cli(
        "sweep", model, "--threads", "1", "--out", str(tmp_path / "s.jsonl"), "--cluster", "ray://127.0.0.1:1"
    )
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "cannot reach the Ray cluster at 127.0.0.1:1" in p.stderr, p.stderr


def test_without_ray_cluster_says_how_to_install(model: str, tmp_path: Path) -> None:
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    p = _cli(
        "sweep", model, "--threads", "1", "--out", str(tmp_path / "s.jsonl"), "--cluster", "ray", env=env
    )
    assert p.returncode == 2
    assert p.stderr.strip() == "inferspeed: error: --cluster needs Ray: pip install 'inferspeed[ray]'"


def test_cluster_flags_need_cluster(model: str, tmp_path: Path) -> None:
    p = _cli("sweep", model, "--threads", "1", "--out", str(tmp_path / "s.jsonl"), "--every-node")
    assert p.returncode == 2 and "go with --cluster" in p.stderr


def test_parse_cluster() -> None:
    assert parse_cluster("ray") == "auto"
    assert parse_cluster("ray://10.0.0.5:6379") == "10.0.0.5:6379"
    for bad in ("ray://", "ray://host", "local", "ray://host:port"):
        with pytest.raises(ConfigError):
            parse_cluster(bad)


def _info(nid: str, ip: str, labels: dict[str, str], cpus: float = 4.0, **resources: float) -> dict[str, Any]:
    return {
        "NodeID": nid,
        "Alive": True,
        "NodeManagerAddress": ip,
        "Labels": {"ray.io/node-id": nid, **labels},
        "Resources": {"CPU": cpus, **resources} if cpus else dict(resources),
    }


def test_host_names_and_node_selection() -> None:
    infos = [
        _info("aa" * 28, "10.0.0.1", {"instance": "c7i"}),
        _info("bb" * 28, "10.0.0.2", {"instance": "c7i"}),
        _info("cc" * 28, "10.0.0.3", {"instance": "m7g", "accelerator": "cpu"}),
        _info("dd" * 28, "10.0.0.4", {}),
        _info("ee" * 28, "10.0.0.4", {}, cpus=0, inferspeed=1.0),
    ]
    assert host_names(infos) == [
        "instance=c7i@10.0.0.1",
        "instance=c7i@10.0.0.2",
        "accelerator=cpu,instance=m7g",
        "10.0.0.4#dddddddd",
        "10.0.0.4#eeeeeeee",
    ]
    nodes = select_nodes(infos, {"instance": "c7i"}, None)
    assert [n.ip for n in nodes] == ["10.0.0.1", "10.0.0.2"] and nodes[0].reserve == {"CPU": 4.0}
    assert [n.reserve for n in select_nodes(infos, {}, "inferspeed")] == [{"inferspeed": 1.0}]
    with pytest.raises(ConfigError, match="no live node of the Ray cluster has CPUs and instance=x"):
        select_nodes(infos, {"instance": "x"}, None)


def _line(host: str, cell: dict[str, Any], median: float) -> SweepLine:
    result = {
        "model": {"name": "m.onnx", "inputs": [{"bound_shape": [cell.get("batch", 1), 4]}]},
        "stats": {"median_ns": median, "p99_ns": 2 * median, "throughput_per_s": 1e9 / median},
        "environment": {"cpu": {"model": "CPU", "logical_cores": 8}},
    }
    return SweepLine(cell, result=result, host={"name": host, "labels": {"instance": host}})


def test_hosts_table_fastest_and_cheapest() -> None:
    lines = [
        _line("fast", {"batch": 1}, 1000.0),
        _line("fast", {"batch": 4}, 2000.0),  # 500 ns per item: its best cell
        _line("slow", {"batch": 1}, 3000.0),
        _line("slow", {"batch": 4}, 8000.0),
        SweepLine({"batch": 2}, error="node slow was lost", host={"name": "slow"}, lost=True),
    ]
    rows = host_rows(lines, {"fast": 4.0, "slow": 0.5})
    assert [(r.host, r.median_per_item_ns, r.best) for r in rows] == [
        ("fast", 500.0, {"batch": 4}),
        ("slow", 2000.0, {"batch": 4}),
    ]
    # $4/h at 2M items/s against $0.5/h at 0.5M items/s: the slow host is the cheaper per item.
    assert [(r.cells, r.failed) for r in rows] == [(2, 0), (3, 1)]
    assert rows[0].cost_per_million == pytest.approx(4.0 / 3600 / 2e6 * 1e6)
    assert rows[1].cost_per_million < rows[0].cost_per_million
    text = render_hosts(lines, {"fast": 4.0, "slow": 0.5})
    slow_row = next(line for line in text.splitlines() if line.startswith("m.onnx  slow"))
    assert "cheapest" in slow_row and "4.00x slower" in slow_row
    assert parse_cost("instance=c7i=0.18") == ("instance=c7i", 0.18)
    with pytest.raises(ConfigError):
        parse_cost("fast=free")


def test_superseded_lines_are_left_out_of_reports() -> None:
    lost = SweepLine({"batch": 1}, error="node b was lost", host={"name": "b"}, lost=True)
    folded = fold_hosts([_line("a", {"batch": 1}, 1000.0), lost, _line("b", {"batch": 1}, 900.0)])
    assert [x.cell for x in folded] == [{"batch": 1, "host": "a"}, {"batch": 1, "host": "b"}]
    assert all(x.error is None for x in folded)
    assert [x.label for x in folded] == ["batch=1, host=a", "batch=1, host=b"]
    local = [SweepLine({"threads": 1}, result={})]
    assert fold_hosts(local) == local
