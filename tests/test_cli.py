"""The command line as a user runs it: real processes, exit codes, one-line errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .child_events import Events


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferspeed", *args], capture_output=True, text=True, timeout=timeout
    )


def test_run_demo_model(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    p = cli("run", "--max-time", "0.3", "--warmup", "50ms", "--json", str(out))
    assert p.returncode == 0, p.stderr
    assert "median" in p.stdout and "demo_mlp.onnx" in p.stdout
    doc = json.loads(out.read_text())
    assert doc["results"][0]["model"]["name"] == "demo_mlp.onnx"
    assert doc["results"][0]["config"]["max_time"] == pytest.approx(0.3)


def test_json_to_standard_output(models: dict[str, str]) -> None:
    """`--json -`: standard output holds the JSON document alone, for a pipe into jq or a tool."""
    p = cli("run", models["add"], "--max-time", "0.2", "--warmup", "20ms", "--json", "-")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["schema"] == "inferspeed/1" and doc["results"][0]["model"]["name"] == "add.onnx"
    assert "written" not in p.stderr
    p = cli("profile", models["mlp_small"], "--max-time", "0.2", "--json", "-")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["results"][0]["profile"]["by_op_type"]


def test_run_user_model_with_flags(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = cli(
        "run", models["embedding"], "--threads", "1", "--mode", "run", "-n", "200", "--dim", "batch=2",
        "--shape", "scale=scalar", "--range", "ids=0:100", "--dim", "seq=5", "--json", str(out), "-q",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    res = json.loads(out.read_text())["results"][0]
    assert res["stats"]["count"] == 200 and res["config"]["mode"] == "run"
    assert {i["name"]: i["bound_shape"] for i in res["model"]["inputs"]} == {"ids": [2, 5], "scale": []}


def test_run_with_trust_flags(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = cli(
        "run", models["add"], "--cache", "cold", "--flush-bytes", "8M", "--input-sets", "3",
        "--target-ci", "5%", "--max-time", "1", "--no-spin", "--processes", "2", "--json", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "cache=cold (8 MiB flushed before each call)" in p.stdout and "95% CI" in p.stdout
    assert "processes  2 pooled" in p.stdout
    res = json.loads(out.read_text())["results"][0]
    assert res["loop"]["cache"] == "cold" and res["loop"]["flush_bytes"] == 8 << 20
    assert res["loop"]["input_sets"] == 3 and res["config"]["spin"] is False
    assert res["processes"]["count"] == 2
    lo, hi = res["stats"]["ci95_median_ns"]
    assert lo <= res["stats"]["median_ns"] <= hi
    # The warnings the JSON holds are the ones the report printed, in the same order.
    printed = [
        line.removeprefix("WARNING: ") for line in p.stdout.splitlines() if line.startswith("WARNING: ")
    ]
    assert printed == [w["message"] for w in res["warnings"]]


def test_dynamic_dim_notice(models: dict[str, str]) -> None:
    p = cli("run", models["add_dynamic"], "-n", "20", "-q")
    assert p.returncode == 0
    assert "batch 1 (single stream)" in p.stderr and "--batch N" in p.stderr


def test_info(models: dict[str, str]) -> None:
    p = cli("info", models["embedding"])
    assert p.returncode == 0, p.stderr
    assert "ids" in p.stdout and "[batch, seq]" in p.stdout and "Gather" in p.stdout
    p = cli("info", models["if"], "--json")
    info = json.loads(p.stdout)
    assert info["operators"] == {"If": 1, "Add": 1, "Mul": 1}  # subgraphs counted
    assert info["inputs"][0] == {"name": "cond", "type": "bool", "shape": []}
    p = cli("info", models["mlp3"], "--json")
    assert json.loads(p.stdout)["parameters"] == 3 * (512 * 512 + 512)


BAD_INPUTS = [
    (["run", "{missing}"], "model file not found"),
    (["run", "{dir}"], "is a directory"),
    (["run", "{empty}"], "is empty"),
    (["run", "{junk}"], "cannot load model"),
    (["run", "{truncated}"], "cannot load model"),
    (["info", "{junk}"], "not a readable ONNX model"),
    (["run", "{add}", "--shape", "x=1x3"], "does not fit"),
    (["run", "{add}", "--shape", "x=1xq"], "is not a dimension"),
    (["run", "{add}", "--shape", "x"], "expects NAME=VALUE"),
    (["run", "{add}", "--shape", "x=1x16", "--shape", "x=2x16"], "twice"),
    (["run", "{add}", "--shape", "y=1x16"], "no input named 'y'"),
    (["run", "{add}", "--shape", "x=0x16"], "dimensions must be positive"),
    (["run", "{add_dynamic}", "--dim", "batch=-1"], "positive integer"),
    (["run", "{add_dynamic}", "--dim", "seq=2"], "no input has a dimension named 'seq'"),
    (["run", "{add}", "--input", "y=1"], "no input named 'y'"),
    (["run", "{add}", "--input", "x=abc"], "cannot use 'abc'"),
    (["run", "{add}", "--range", "x=1"], "LOW:HIGH"),
    (["run", "{add}", "--inputs", "{missing}"], "cannot read inputs file"),
    (["run", "{add}", "--provider", "NoSuchExecutionProvider"], "is not available"),
    (["run", "{add}", "--provider", "CUDA"], "is not available"),
    (["run", "{add}", "--threads", "0"], "is not a list of positive integers"),
    (["run", "{add}", "--threads", "two"], "is not a list of positive integers"),
    (["run", "{add}", "--iterations", "1e3"], "is not an integer"),
    (["run", "{add}", "--max-time", "fast"], "is not a duration"),
    (["run", "{add}", "--mode", "turbo"], "invalid choice"),
    (["run", "{add}", "--ort-lib", "{missing}"], "does not exist"),
    (["run", "{add}", "--ort-lib", "{junk}"], "cannot load ONNX Runtime library"),
    (["run", "{add}", "--json", "{missing_dir}/r.json"], "does not exist"),
    (["run", "{add_dynamic}", "--shape", "x=100000000x16"], "max_input_bytes"),
    (["run", "{embedding}", "--input", "ids=1000"], "first run"),
    (["run", "{add}", "--no-such-flag"], "unrecognized arguments"),
    (["run", "{add}", "--target-ci", "0%"], "between 0% and 100%"),
    (["run", "{add}", "--target-ci", "tight"], "is not a fraction"),
    (["run", "{add}", "--target-percentile", "99"], "target_percentile needs target_ci"),
    (["run", "{add}", "--target-ci", "1%", "--target-percentile", "p100"], "between 0 and 100"),
    (["run", "{add}", "--pin", "9999"], "cannot pin to CPU 9999"),
    (["run", "{add}", "--flush-bytes", "0"], "must be positive"),
    (["run", "{add}", "--flush-bytes", "lots"], "is not a size"),
    (["run", "{add}", "--cache", "hot"], "invalid choice"),
    (["run", "{add}", "--input-sets", "0"], "must be at least 1"),
    (["run", "{add}", "--processes", "0"], "must be at least 1"),
    (["frobnicate"], "invalid choice"),
    (["run", "{ext_outside}"], "outside the model's folder"),
    (["run", "{ext_absolute}"], "outside the model's folder"),
    (["run", "{ext_missing}"], "external data file 'w.bin' of tensor 'w' is missing"),
    (["run", "{unknown_op}"], "Frobnicate(-1) is not a registered function/op"),
    (["run", "{future_opset}"], "Opset 99"),
    (["run", "{add_dynamic}", "--shape", "x=4x16", "--dim", "batch=8"], "contradicts"),
    (["run", "{add}", "--provider", "CPU:bogus=1"], "takes no options"),
    (["run", "{add}", "--json", "/proc/inferspeed-result.json"], "cannot write in /proc"),
    (["run", "{add}", "--json", "{dir}"], "is a directory"),
    (
        ["run", "{add}", "--max-input-bytes", "16"],
        "the inputs would need 64 bytes, more than max_input_bytes (16 bytes)",
    ),
    (["run", "{add}", "--max-input-bytes", "a lot"], "is not a size"),
    (["run", "{add}", "--qps", "-5", "--scenario", "server"], "must be a positive rate"),
    (["run", "{add}", "--deadline", "soon"], "is not a duration"),
    (["run", "{add}", "--duration", "-1"], "is not a duration"),
    (["run", "{add}", "--warmup", "-1"], "is not a duration"),
    (["run", "{add}", "--scheduler-spin", "x"], "is not a duration"),
    (["run", "{add}", "--seed", "-1"], "must be at least 0"),
    (["run", "{add}", "--rounds", "0"], "must be at least 1"),
    (["run", "{add}", "--concurrency", "0"], "is not a list of positive integers"),
    (["run", "{add}", "--arrival", "weird"], "invalid choice"),
    (["run", "{add}", "--iterations", "-5"], "must be at least 1"),
    (
        ["run", "{add}", "--concurrency", "2"],
        "--concurrency applies to the server and offline",
    ),
    (["capacity", "{add}", "--slo", "p99=5ms", "--iterations", "10"], "unrecognized arguments"),
    (["compare", "{newer_json}", "{newer_json}"], "upgrade inferspeed"),
    (["report", "{newer_json}"], "upgrade inferspeed"),
    (["compare", "{junk}", "{junk}"], "is not JSON"),
    (["run", "{lfs}"], "is a Git LFS pointer to a file of 24,187 bytes, not the model: fetch the"),
    (["info", "{lfs}"], "is a Git LFS pointer"),
    (["gate", "{add}", "{lfs}"], "is a Git LFS pointer"),
    (["run", "{add}", "--inputs", "{lfs}"], "is not an .npz archive: give arrays by input name"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_one_line_exit_2(
    argv: list[str], message: str, models: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "junk.onnx").write_bytes(os.urandom(2048))
    data = Path(models["mlp3"]).read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "newer.json").write_text(json.dumps({"schema": "inferspeed/99", "results": []}))
    (tmp_path / "lfs.onnx").write_text(  # a model cloned without `git lfs pull`
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 24187\n"
    )
    paths = {
        **_odd_models(tmp_path),
        "newer_json": str(tmp_path / "newer.json"),
        **models,
        "missing": str(tmp_path / "missing.onnx"),
        "dir": str(tmp_path),
        "empty": str(tmp_path / "empty.onnx"),
        "junk": str(tmp_path / "junk.onnx"),
        "truncated": str(tmp_path / "truncated.onnx"),
        "lfs": str(tmp_path / "lfs.onnx"),
        "missing_dir": str(tmp_path / "no" / "such"),
    }
    args = [a.format(**paths) for a in argv] + ["-n", "5"] * (argv[0] == "run")
    p = cli(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert message in lines[0] and "Traceback" not in p.stderr


def _odd_models(folder: Path) -> dict[str, str]:
    """Models that must be refused: external data outside the folder, missing, an unknown
    operator, an opset from the future."""
    import numpy as np
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    def save(graph: Any, name: str, opset: int = 17, domain: str = "") -> str:
        model = h.make_model(graph, opset_imports=[h.make_opsetid(domain, opset), h.make_opsetid("", 17)])
        model.ir_version = 8
        path = folder / name
        onnx.save(model, path)
        return str(path)

    x = h.make_tensor_value_info("x", T.FLOAT, [4])
    y = h.make_tensor_value_info("y", T.FLOAT, [4])
    out: dict[str, str] = {}
    for name, location in (
        ("outside", "../outside.bin"),
        ("absolute", "/etc/hostname"),
        ("missing", "w.bin"),
    ):
        sub = folder / f"ext_{name}"
        sub.mkdir(exist_ok=True)
        w = nh.from_array(np.ones(4, np.float32), "w")
        model = h.make_model(
            h.make_graph([h.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w]),
            opset_imports=[h.make_opsetid("", 17)],
        )
        model.ir_version = 8
        onnx.save(model, sub / "m.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
        proto = onnx.load(sub / "m.onnx", load_external_data=False)
        for entry in proto.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        onnx.save(proto, sub / "m.onnx")
        if name == "missing":
            (sub / "w.bin").unlink()
        out[f"ext_{name}"] = str(sub / "m.onnx")
    (folder / "outside.bin").write_bytes(np.ones(4, np.float32).tobytes())
    out["unknown_op"] = save(
        h.make_graph([h.make_node("Frobnicate", ["x"], ["y"], domain="com.nosuch")], "g", [x], [y]),
        "unknown_op.onnx",
        opset=1,
        domain="com.nosuch",
    )
    graph = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    future = h.make_model(graph, opset_imports=[h.make_opsetid("", 99)])
    future.ir_version = 8
    onnx.save(future, folder / "future.onnx")
    out["future_opset"] = str(folder / "future.onnx")
    return out


def test_ctrl_c_saves_partial_result(models: dict[str, str], tmp_path: Path) -> None:
    out, events = tmp_path / "partial.json", Events(tmp_path / "events.jsonl")
    argv = ["run", models["add_dynamic"], "--max-time", "60", "--warmup", "0.1", "--json", str(out)]
    with subprocess.Popen(
        [sys.executable, "-m", "inferspeed", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=events.env(),
    ) as proc:
        try:
            events.wait("timed", proc=proc)  # warmed up, timing: there is something to keep
            sent = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:  # a failure above: leave no process (or open pipe) behind
                proc.kill()
                proc.communicate()
    assert time.perf_counter() - sent < 5
    assert proc.returncode == 130, stderr
    assert "batch 1 (single stream)" in stderr  # the dynamic-dim notice, once the session was ready
    assert "PARTIAL" in stdout and "partial" in stderr and "Traceback" not in stderr
    res = json.loads(out.read_text())["results"][0]
    assert res["interrupted"] is True and res["stats"]["count"] > 0


# ----------------------------------------------------------------------------- flags by command

#: A flag each command does not take (it would refuse or ignore it): argparse refuses it.
FOREIGN_FLAGS = [
    ("capacity", ["--slo", "p99=5ms", "--max-time", "1"]),
    ("capacity", ["--slo", "p99=5ms", "--scenario", "server"]),
    ("capacity", ["--slo", "p99=5ms", "--processes", "2"]),
    ("capacity", ["--slo", "p99=5ms", "--target-ci", "1%"]),
    ("profile", ["--processes", "2"]),
    ("profile", ["--concurrency", "2"]),
    ("profile", ["--rounds", "3"]),
    ("tradeoff", ["--scenario", "server"]),
    ("tradeoff", ["--input-sets", "3"]),
    ("tradeoff", ["--target-ci", "1%"]),
    ("sweep", ["--out", "x.jsonl", "--threads", "1", "--scenario", "offline"]),
    ("info", ["--threads", "1"]),
    ("compare", ["--threads", "1"]),
]


@pytest.mark.parametrize(("command", "argv"), FOREIGN_FLAGS, ids=[f"{c} {a[-2]}" for c, a in FOREIGN_FLAGS])
def test_command_refuses_a_flag_it_does_not_take(
    command: str, argv: list[str], models: dict[str, str]
) -> None:
    p = cli(command, models["add"], *argv)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.count("\n") == 1 and "unrecognized arguments" in p.stderr, p.stderr
    assert argv[-2] in p.stderr


#: A flag given where the command would ignore it: a one-line usage error naming the flag.
IGNORED_FLAGS = [
    (["run", "--concurrency", "2"], "--concurrency applies to the server and offline scenarios only"),
    (["run", "--duration", "1"], "--duration applies to the server and offline scenarios only"),
    (["run", "--arrival", "constant"], "--arrival applies to the server scenario only"),
    (["run", "--scenario", "offline", "--scheduler-spin", "1ms"], "--scheduler-spin applies to the server"),
    (["run", "--scenario", "offline", "--qps", "100"], "--qps applies to the server scenario only"),
    (["run", "--scenario", "server", "--qps", "100", "-n", "5"], "--iterations applies to the single-stream"),
    (["run", "--scenario", "offline", "--cache", "cold"], "--cache applies to the single-stream"),
    (["run", "--flush-bytes", "8M"], "--flush-bytes applies to --cache cold only"),
    (["run", "--rounds", "3"], "--rounds applies to several models, thread counts or --ort-lib"),
    (["profile", "--cache", "warm", "--flush-bytes", "8M"], "--flush-bytes applies to --cache cold only"),
    (["tradeoff", "--quantize", "dynamic", "--calibration", "c.npz"], "--calibration applies to --quantize"),
    (["report", "r.json", "--pyperf-name", "x"], "--pyperf-name applies to --pyperf only"),
    (["compare", "a.json", "b.json", "--json", "--quiet"], "not allowed with argument --json"),
]


@pytest.mark.parametrize(("argv", "message"), IGNORED_FLAGS, ids=[" ".join(a) for a, _ in IGNORED_FLAGS])
def test_flag_that_would_be_ignored_is_a_usage_error(
    argv: list[str], message: str, models: dict[str, str], tmp_path: Path
) -> None:
    """Refused before anything is loaded: the model file need not even exist."""
    args = (
        [*argv[:1], str(tmp_path / "model.onnx"), *argv[1:]]
        if argv[0] in ("run", "profile", "tradeoff")
        else argv
    )
    p = cli(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.count("\n") == 1 and message in p.stderr, p.stderr
    assert p.stderr.startswith(f"inferspeed {argv[0]}: error:")


HEAVY = ("numpy", "onnx", "onnxruntime", "scipy", "rich", "matplotlib", "ml_dtypes")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["run", "--help"],
        ["profile", "--help"],
        ["run", "--no-such-flag"],
        ["run", "--concurrency", "2"],
        ["info", "no-such-model.onnx"],
        ["run", "no-such-model.onnx"],
    ],
)
def test_help_and_flag_errors_import_nothing_heavy(argv: list[str]) -> None:
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "inferspeed", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == (0 if "--help" in argv else 2), p.stderr
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")
    }
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert not heavy, f"inferspeed {' '.join(argv)} imported {heavy[:5]}"


def test_defaults_shown_in_help_are_the_real_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """--help shows the defaults the code uses (they live in one place, config.py)."""
    from inferspeed.analysis.compare import compare
    from inferspeed.cli import main
    from inferspeed.config import DEFAULT_ROUNDS, DEFAULT_THRESHOLD
    from inferspeed.measure import interleave

    assert compare.__kwdefaults__["threshold"] == DEFAULT_THRESHOLD
    assert interleave.DEFAULT_ROUNDS == DEFAULT_ROUNDS
    cases = (
        (["run", "--help"], f"(default {DEFAULT_ROUNDS})"),
        (["compare", "--help"], f"(default {DEFAULT_THRESHOLD * 100:g}%)"),
    )
    for argv, shown in cases:
        with pytest.raises(SystemExit):
            main(argv)
        assert shown in " ".join(capsys.readouterr().out.split()), argv


def test_one_module_per_command_and_every_flag_read() -> None:
    """Each command is its own module, and each flag it takes is read: by its module (args.X)
    or through config_from_args into a Config field."""
    import argparse
    import importlib
    import inspect
    import re

    from inferspeed.cli import COMMANDS, build_parser, flags

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(COMMANDS)
    for name, command in sub.choices.items():
        module = COMMANDS[name]
        source = inspect.getsource(module)
        # A command may hand a group of its flags to a helper module of the CLI (the cluster
        # flags of sweep in cli/cluster.py): what that module reads counts as read.
        for helper in set(re.findall(r"from \.(\w+) import", source)) - {"flags", "common", "values"}:
            source += inspect.getsource(importlib.import_module(f"inferspeed.cli.{helper}"))
        for action in command._actions:
            if action.dest == "help":
                continue
            read = f"args.{action.dest}" in source or (
                "config_from_args" in source and action.dest in flags.CONFIG_FIELDS
            )
            assert read, f"inferspeed {name} takes {action.option_strings or action.dest} and never reads it"
