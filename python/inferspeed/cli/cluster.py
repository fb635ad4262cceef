"""The flags of ``inferspeed sweep`` that send its cells to a Ray cluster, and that run
(``tools.cluster``). Not a command of its own: ``cli/sweep.py`` adds these flags and calls
:func:`sweep_on_cluster` when ``--cluster`` is given."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError
from .values import split_pair

if TYPE_CHECKING:
    from ..results.sweepfile import SweepLine
    from ..tools.sweep import SweepResult

__all__ = ["add_cluster_flags", "check_cluster_flags", "sweep_on_cluster"]


def add_cluster_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("on a Ray cluster (pip install 'inferspeed[ray]'; docs/cluster.md)")
    g.add_argument(
        "--cluster",
        metavar="ray[://HOST:PORT]",
        help="each cell a Ray task that owns a whole node: ray (the cluster of $RAY_ADDRESS or of "
        "this machine) or ray://HOST:PORT (the address `ray start --head` printed)",
    )
    g.add_argument(
        "--on",
        action="append",
        metavar="LABEL=VALUE",
        help="only nodes with this Ray node label (ray start --labels ...; repeatable: all must match)",
    )
    g.add_argument(
        "--every-node",
        action="store_true",
        help="the whole grid on every chosen node (to compare machines); default: each cell once, "
        "on whichever node is free",
    )
    g.add_argument(
        "--node-resource",
        metavar="NAME",
        help="a cell reserves every unit of this custom resource of its node instead of all its CPUs "
        "(nodes started with --num-cpus=0 --resources='{\"NAME\": 1}')",
    )


def check_cluster_flags(args: argparse.Namespace) -> None:
    if args.cluster is None and (args.on or args.every_node or args.node_resource):
        raise ConfigError("--on, --every-node and --node-resource go with --cluster")


def _labels(args: argparse.Namespace) -> dict[str, str]:
    labels = {}
    for text in args.on or []:
        key, value = split_pair("--on", text)
        labels[key] = value
    return labels


def sweep_on_cluster(
    args: argparse.Namespace,
    grid: dict[str, Any],
    config: Config,
    by: str,
    progress: Callable[[int, int, SweepLine], None],
) -> SweepResult:
    """``tools.cluster.cluster_sweep`` from the flags (each line labelled with its host by
    :attr:`~inferspeed.results.sweepfile.SweepLine.label`)."""
    from ..tools.cluster import cluster_sweep

    return cluster_sweep(
        args.model,
        grid,
        args.out,
        cluster=args.cluster,
        on=_labels(args),
        every_node=args.every_node,
        node_resource=args.node_resource,
        config=config,
        resume=args.resume,
        by=by,
        progress=progress,
    )
