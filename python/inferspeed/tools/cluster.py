"""``inferspeed sweep --cluster ray``: the cells of a sweep as Ray tasks on the nodes of a Ray
cluster, each result appended by this process (the driver) to the same JSONL file a local
sweep writes.

A measurement owns its node: a cell's task reserves every CPU the node declares (or, with
``node_resource``, every unit of that custom resource) and is pinned to the node
(``NodeAffinitySchedulingStrategy``, hard), and the driver gives a node one cell at a time. In
the task, the cell runs as a local sweep runs it, in a fresh spawned process
(``measure.spawn.run_in_process``), so a crash of ONNX Runtime is the cell's failure and
not the node's. Nodes are chosen by their Ray labels (``on``); ``every_node`` runs the whole
grid on each of them, for a comparison of machines.

The model file (with its external data) and the ``--inputs`` file go into Ray's object store
once; a node fetches them only when its cache (``$INFERSPEED_CACHE_DIR/models/SHA256/``, else
``~/.cache/inferspeed/models/...``) does not hold that model yet, so a model travels once per
node, not once per cell (``host.model`` says "fetched" or "cached").

Each line carries ``host``: the node's name (its labels, or its address where labels do not
tell nodes apart), id, address, labels, what the task reserved, and the node's clock at the
start and end of the cell (``started``, ``ended``); the result carries the environment the
cell's process saw. A node that dies under a cell gives that cell a line with its ``error``
and ``lost: true``; ``resume`` measures such cells again (their new line supersedes the old)
along with every cell that has no line. Cells are keyed by cell and host name with
``every_node``, by cell alone otherwise, so a resume on a restarted cluster (new node ids)
recognises its nodes by their labels.

Ray is imported only here, only when a cluster sweep runs (``pip install 'inferspeed[ray]'``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import Config
from ..errors import ConfigError, InferspeedError, WorkerCrashed
from ..events import emit
from ..measure.spawn import run_in_process
from ..results.sweepfile import SweepLine, append_line, cell_key, read_for_resume
from .sweep import SweepResult, cell_config, grid_cells, measure_cell, ranking_for

__all__ = [
    "INSTALL_HINT",
    "ClusterNode",
    "cluster_sweep",
    "entry_key",
    "host_names",
    "model_cache_dir",
    "parse_cluster",
    "select_nodes",
]

INSTALL_HINT = "pip install 'inferspeed[ray]'"
#: Seconds to wait for a TCP connection to the cluster's address before calling it unreachable.
CONNECT_TIMEOUT = 5.0
#: How often the driver wakes up while cells run (to see Ctrl-C and nodes that went away).
_WAIT = 1.0
#: The lines the driver writes for a cell whose node failed it name the host before the error.
_HOST_FIRST = ("cell", "host", "error")


def parse_cluster(spec: str) -> str:
    """``ray`` -> ``auto`` (``$RAY_ADDRESS``, else the cluster this machine is part of);
    ``ray://HOST:PORT`` -> ``HOST:PORT``, the address ``ray start --head`` printed."""
    text = spec.strip()
    if text == "ray":
        return "auto"
    if text.startswith("ray://"):
        address = text[len("ray://") :]
        host, _, port = address.rpartition(":")
        if host and port.isdigit():
            return address
    raise ConfigError(f"--cluster takes ray or ray://HOST:PORT (the head's address), got {spec!r}")


def _check_reachable(address: str) -> None:
    """One line when nothing answers at HOST:PORT, instead of Ray's long retries."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InferspeedError(
            f"cannot reach the Ray cluster at {address}: {reason} (is `ray start --head` running there, "
            "and is this the address it printed?)"
        ) from None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--cluster needs Ray: {INSTALL_HINT}") from None
    return ray


def _connect(ray: Any, address: str) -> bool:
    """Join the cluster as its driver; False when this process was connected already (the
    caller of the Python API connected it, and disconnects it)."""
    if ray.is_initialized():
        return False
    if address == "auto" and os.environ.get("RAY_ADDRESS", "").strip() not in ("", "auto", "local"):
        address = os.environ["RAY_ADDRESS"].strip()
    if address != "auto" and not address.startswith("ray://"):
        _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = " ".join(str(exc).split())[:300]
        where = (
            "no running Ray cluster found"
            if address == "auto"
            else f"cannot join the Ray cluster at {address}"
        )
        raise InferspeedError(f"{where}: {first}") from None
    return True


@dataclass(frozen=True)
class ClusterNode:
    """A node that measures: its Ray id, name (stable across restarts when labelled), address,
    labels (Ray's own ``ray.io/`` ones left out) and what a cell reserves of it."""

    node_id: str
    name: str
    ip: str
    labels: Mapping[str, str]
    reserve: Mapping[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "node_id": self.node_id,
            "ip": self.ip,
            "labels": dict(self.labels),
            "reserved": dict(self.reserve),
        }


def _user_labels(info: Mapping[str, Any]) -> dict[str, str]:
    labels = info.get("Labels") or {}
    return {str(k): str(v) for k, v in sorted(labels.items()) if not str(k).startswith("ray.io/")}


def host_names(infos: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each node's name: its labels (``accelerator=cpu,instance=c7i``); the address is added
    where labels do not tell two nodes apart, and the node id where that does not either."""
    names = [",".join(f"{k}={v}" for k, v in _user_labels(i).items()) for i in infos]
    names = [
        n
        if n and names.count(n) == 1
        else (f"{n}@{i['NodeManagerAddress']}" if n else str(i["NodeManagerAddress"]))
        for n, i in zip(names, infos, strict=True)
    ]
    return [n if names.count(n) == 1 else f"{n}#{i['NodeID'][:8]}" for n, i in zip(names, infos, strict=True)]


def select_nodes(
    infos: Sequence[Mapping[str, Any]], on: Mapping[str, str], node_resource: str | None
) -> list[ClusterNode]:
    """The live nodes (``ray.nodes()``) that can measure: with CPUs (or ``node_resource``) and
    every label of ``on``, in order of name. A cell reserves all of the one or the other."""
    live = [i for i in infos if i.get("Alive")]
    names = dict(zip((i["NodeID"] for i in live), host_names(live), strict=True))
    nodes = []
    for info in live:
        resources = info.get("Resources") or {}
        labels = info.get("Labels") or {}
        if any(str(labels.get(k)) != v for k, v in on.items()):
            continue
        want = node_resource or "CPU"
        amount = float(resources.get(want, 0.0))
        if amount <= 0:
            continue
        nid = info["NodeID"]
        nodes.append(
            ClusterNode(nid, names[nid], str(info["NodeManagerAddress"]), _user_labels(info), {want: amount})
        )
    if not nodes:
        seen = "; ".join(f"{n} ({_describe(i)})" for n, i in zip(host_names(live), live, strict=True))
        wanted = " and ".join(f"{k}={v}" for k, v in on.items()) or "any labels"
        raise ConfigError(
            f"no live node of the Ray cluster has {node_resource or 'CPUs'} and {wanted}; "
            f"nodes: {seen or 'none'}"
        )
    return sorted(nodes, key=lambda n: n.name)


def _describe(info: Mapping[str, Any]) -> str:
    resources = info.get("Resources") or {}
    shown = {k: v for k, v in resources.items() if not k.startswith("node:") and "memory" not in k}
    return f"resources {shown}"


def entry_key(line: SweepLine, every_node: bool) -> str:
    """What makes a line the same cell for ``resume``: the cell, and its host's name with
    ``every_node``."""
    return _key(line.cell, line.host_name, every_node)


def _key(cell: Mapping[str, Any], host: str | None, every_node: bool) -> str:
    return f"{host}|{cell_key(cell)}" if every_node else cell_key(cell)


def model_cache_dir() -> str:
    """Where a node keeps the models sent to it (by sha256)."""
    base = os.environ.get("INFERSPEED_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        home = os.path.expanduser("~")
        base = os.path.join(xdg, "inferspeed") if xdg else os.path.join(home, ".cache", "inferspeed")
        if not xdg and (not home or home == "~"):
            base = os.path.join(tempfile.gettempdir(), "inferspeed")
    return os.path.join(base, "models")


@dataclass(frozen=True)
class Bundle:
    """The files a cell needs, as the driver sends them: relative names (the model's first)
    and their sha256 together."""

    sha256: str
    model: str
    inputs: str | None
    files: dict[str, bytes]


def _bundle(model_path: str, config: Config) -> Bundle:
    """The model, its external data files and the inputs file, read into memory."""
    from ..facts.modelfile import check_external_data, check_model_path, load_proto

    check_model_path(model_path)
    folder = os.path.dirname(os.path.abspath(model_path))
    name = os.path.basename(model_path)
    names = [name]
    proto = load_proto(model_path)
    if proto is not None:
        check_external_data(proto, model_path)
        for tensor in proto.external_data_tensors():
            if tensor.external:
                location = os.path.normpath(tensor.external_info().get("location", ""))
                if location not in names:
                    names.append(location)
    files = {}
    for rel in names:
        with open(os.path.join(folder, rel), "rb") as f:
            files[rel] = f.read()
    inputs = None
    if config.inputs_file:
        inputs = "inputs/" + os.path.basename(config.inputs_file)
        with open(config.inputs_file, "rb") as f:
            files[inputs] = f.read()
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return Bundle(h.hexdigest(), name, inputs, files)


def _files_on_node(box: list[Any], sha256: str) -> tuple[str, str]:
    """(the node's folder of the bundle, "fetched" or "cached"): fetched from the object
    store only when this node's cache does not hold it; written whole or not at all."""
    root = os.path.join(model_cache_dir(), sha256)
    if os.path.isfile(os.path.join(root, ".complete")):
        return root, "cached"
    import ray

    files: dict[str, bytes] = ray.get(box[0])
    os.makedirs(os.path.dirname(root), exist_ok=True)
    partial = tempfile.mkdtemp(dir=os.path.dirname(root), prefix=f".{sha256[:12]}-")
    try:
        for rel, data in files.items():
            target = os.path.join(partial, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
        open(os.path.join(partial, ".complete"), "wb").close()
        try:
            os.rename(partial, root)
        except OSError:  # another process (a node on the same host) put it there first
            if not os.path.isfile(os.path.join(root, ".complete")):
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root, "fetched"


def cell_on_node(
    box: list[Any], bundle: Bundle, cell: dict[str, Any], config: Config, host: dict[str, Any], index: int
) -> SweepLine:
    """The Ray task of one cell (runs on its node): the files from this node's cache or the
    object store, the cell in a fresh process as a local sweep runs it, and its line with the
    host record and this node's clock at the start and the end."""
    started = time.time()
    emit("node_cell", host=host["name"], index=index)
    folder, how = _files_on_node(box, bundle.sha256)
    if bundle.inputs is not None:
        config = config.replace(inputs_file=os.path.join(folder, bundle.inputs))
    record = {**host, "hostname": socket.gethostname(), "pid": os.getpid(), "model": how, "started": started}
    try:
        value, _ = run_in_process(
            measure_with_environment, os.path.join(folder, bundle.model), config, what="the cell's process"
        )
        line = SweepLine(cell, result=value)
    except WorkerCrashed as exc:
        line = SweepLine(cell, error=f"crashed: {exc}", crashed=True, exitcode=exc.exitcode)
    except InferspeedError as exc:
        line = SweepLine(cell, error=str(exc))
    return replace(line, host={**record, "ended": time.time()})


def measure_with_environment(model: str, config: Config) -> dict[str, Any]:
    """In the cell's process: the cell as a local sweep measures it, and the environment of
    this host (CPU, OS, Python, ONNX Runtime and its library), which a local sweep leaves out."""
    from ..facts.environment import capture_environment
    from ..facts.ortlib import load_runtime

    data = measure_cell(model, config)
    try:
        runtime = load_runtime(config.ort_lib)
    except InferspeedError:  # measured, so loadable: only a library replaced meanwhile
        runtime = None
    data["environment"] = capture_environment(runtime)
    return data


@dataclass
class _Run:
    """The driver's state: what is still to run, per node or shared, and what runs where."""

    nodes: list[ClusterNode]
    queues: dict[str, list[tuple[int, dict[str, Any]]]]
    shared: list[tuple[int, dict[str, Any]]] | None
    running: dict[Any, tuple[ClusterNode, int, dict[str, Any]]] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)

    def next_for(self, node: ClusterNode) -> tuple[int, dict[str, Any]] | None:
        queue = self.shared if self.shared is not None else self.queues[node.node_id]
        return queue.pop(0) if queue else None

    def idle(self) -> list[ClusterNode]:
        busy = {n.node_id for n, _, _ in self.running.values()}
        return [n for n in self.nodes if n.node_id not in busy and n.node_id not in self.dead]


def _plan(
    cells: list[dict[str, Any]], nodes: list[ClusterNode], lines: list[SweepLine], every_node: bool
) -> tuple[_Run, int]:
    """What is left to run (cells with no line, or whose last line says their node was lost)
    and how many cells the sweep has in all."""
    last: dict[str, SweepLine] = {}
    for line in lines:
        last[entry_key(line, every_node)] = line
    done = {k for k, line in last.items() if not line.lost}
    if every_node:
        queues = {
            n.node_id: [(i, c) for i, c in enumerate(cells) if _key(c, n.name, True) not in done]
            for n in nodes
        }
        return _Run(nodes, queues, None), len(cells) * len(nodes)
    shared = [(i, c) for i, c in enumerate(cells) if cell_key(c) not in done]
    return _Run(nodes, {}, shared), len(cells)


def _lost(node: ClusterNode, exc: BaseException) -> str:
    first = " ".join(str(exc).split()).split(". ")[0]
    return f"node {node.name} ({node.ip}) was lost while it measured this cell: {type(exc).__name__}: {first}"


def _collect(ray: Any, run: _Run, ref: Any) -> SweepLine | None:
    """The line of a finished task; None when its node went away before the cell started
    (the cell stays missing). A node that died under a cell gives a line with ``lost``."""
    node, _, cell = run.running.pop(ref)
    try:
        line: SweepLine = ray.get(ref)
        return line
    except ray.exceptions.TaskUnschedulableError:
        run.dead.add(node.node_id)
        return None
    except ray.exceptions.RayTaskError as exc:  # our task's own exception: the cell failed
        error = " ".join(str(exc).split())[-500:]
        return SweepLine(cell, error=error, host=node.record(), order=_HOST_FIRST)
    except ray.exceptions.RayError as exc:  # the node, its raylet or the task's worker died
        if isinstance(exc, ray.exceptions.NodeDiedError):
            run.dead.add(node.node_id)
        return SweepLine(cell, error=_lost(node, exc), host=node.record(), lost=True, order=_HOST_FIRST)


def _submit(ray: Any, task: Any, run: _Run, box: list[Any], bundle: Bundle, base: Config) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    for node in run.idle():
        nxt = run.next_for(node)
        if nxt is None:
            continue
        index, cell = nxt
        cpus = node.reserve.get("CPU", 0.0)
        custom = {k: v for k, v in node.reserve.items() if k != "CPU"}
        ref = task.options(
            num_cpus=cpus,
            resources=custom or None,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
            max_retries=0,
            retry_exceptions=False,
            name=f"inferspeed cell {index} on {node.name}",
        ).remote(box, bundle, cell, cell_config(base, cell), node.record(), index)
        run.running[ref] = (node, index, cell)


def _drive(
    ray: Any,
    run: _Run,
    bundle: Bundle,
    base: Config,
    path: str,
    total: int,
    progress: Callable[[int, int, SweepLine], None] | None,
) -> list[SweepLine]:
    """Run the cells to the end (or until every node is gone): submit to idle nodes, append
    each finished cell's line, repeat. Ctrl-C cancels what runs; --resume measures it."""
    task = ray.remote(cell_on_node)
    payload = {k: v for k, v in bundle.files.items()}
    box = [ray.put(payload)]  # inside a list: a task fetches it only when its node lacks it
    light = Bundle(bundle.sha256, bundle.model, bundle.inputs, {})
    written: list[SweepLine] = []
    finished = total - sum(len(q) for q in run.queues.values()) - len(run.shared or [])
    try:
        _submit(ray, task, run, box, light, base)
        while run.running:
            ready, _ = ray.wait(list(run.running), num_returns=1, timeout=_WAIT)
            for ref in ready:
                index = run.running[ref][1]
                line = _collect(ray, run, ref)
                if line is None:
                    continue
                append_line(path, line)
                finished += 1
                emit("cell", index=index, cells=total, error=line.error is not None, host=line.host_name)
                written.append(line)
                if progress is not None:
                    progress(finished, total, line)
            _submit(ray, task, run, box, light, base)
    except KeyboardInterrupt:
        for ref in run.running:
            ray.cancel(ref, force=True)
        raise KeyboardInterrupt(
            f"sweep interrupted: {finished} of {total} cells are in {path}; --resume finishes it"
        ) from None
    return written


def cluster_sweep(
    model: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]],
    out: str | os.PathLike[str],
    *,
    cluster: str = "ray",
    on: Mapping[str, str] | None = None,
    every_node: bool = False,
    node_resource: str | None = None,
    config: Config | None = None,
    resume: bool = False,
    by: str | None = None,
    progress: Callable[[int, int, SweepLine], None] | None = None,
) -> SweepResult:
    """:func:`~inferspeed.tools.sweep.sweep` on a Ray cluster (``cluster``: ``ray`` or
    ``ray://HOST:PORT``): each cell a Ray task that owns a whole node, on the nodes with the
    labels ``on``; with ``every_node``, the whole grid on every such node. The entries (last
    line per cell, in the file's order) carry ``host``; ``measured`` counts this call's cells."""
    path, model_path, base = os.fspath(out), os.fspath(model), config or Config()
    by = ranking_for(by, base.metric).name
    cells = grid_cells(grid)
    for cell in cells:
        cell_config(base, cell)  # every cell's configuration is valid before anything runs
    if os.path.exists(path) and not resume:
        raise ConfigError(f"{path} exists: --resume to finish that sweep, or remove it")
    address = parse_cluster(cluster)
    bundle = _bundle(model_path, base)
    ray = _import_ray()
    connected = _connect(ray, address)
    try:
        nodes = select_nodes(ray.nodes(), dict(on or {}), node_resource)
        run, total = _plan(cells, nodes, read_for_resume(path) if resume else [], every_node)
        written = _drive(ray, run, bundle, base, path, total, progress)
    finally:
        if connected:
            ray.shutdown()
    return SweepResult(_entries(path, cells, nodes, run, every_node), by, len(written))


def _entries(
    path: str, cells: list[dict[str, Any]], nodes: list[ClusterNode], run: _Run, every_node: bool
) -> list[SweepLine]:
    """The last line of each cell (and host) in the file, then the cells this sweep has not
    run (their node went away), each with ``error`` and ``missing``: no line of theirs is
    written, so --resume runs them."""
    last: dict[str, SweepLine] = {}
    for line in read_for_resume(path):
        last[entry_key(line, every_node)] = line
    gone = ", ".join(n.name for n in nodes if n.node_id in run.dead)
    why = f"not run: its node went away ({gone}); --resume runs it" if gone else "not run; --resume runs it"
    missing = []
    for node in nodes if every_node else [None]:
        host = {"name": node.name} if node is not None else {}
        for cell in cells:
            if _key(cell, node.name if node is not None else None, every_node) not in last:
                missing.append(SweepLine(cell, error=why, host=host, missing=True, order=_HOST_FIRST))
    return list(last.values()) + missing
