"""``inferspeed info``: a model's inputs, outputs, size and operators, and its MACs at the input
shapes a run would measure at (the same input flags as ``run``). Nothing is timed; where a run's
first call could fail at guessed sizes and go on to others, info makes that first run as ``run``
does (:class:`~inferspeed.measure.session.Session`) and counts at the sizes that ran
(``--no-call``: at the sizes tried first, with a note)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import flags

if TYPE_CHECKING:
    from ..config import Config
    from ..facts.onnxfile import ModelFile

__all__ = ["add_parser", "cmd_info"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "info",
        help="show a model's inputs, outputs, size, operators and MACs",
        description="Show a model's inputs, outputs, size and operators, and its multiply-accumulates "
        "counted at the input shapes `inferspeed run` would measure at (set them with the input flags). "
        "Nothing is timed; where sizes were guessed and a run's first call could fail at them and "
        "go on to other guesses, info makes that first run as run does and counts at the sizes that ran.",
    )
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--no-call",
        action="store_true",
        help="never call the model: count at the sizes a run tries first, even where its first run "
        "could fail at them and measure at others",
    )
    flags.add_input_flags(p, input_sets=False)  # one set or many: the same shapes
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from ..facts.modelfile import check_model_path

    check_model_path(args.model)  # a bad path is answered before numpy and the rest load
    config = flags.config_from_args(args)
    from ..facts.info import info_document
    from ..report.text import render_info

    info = info_document(args.model, lambda: _bound_inputs(args.model, config, call=not args.no_call))
    print(json.dumps(info, indent=2) if args.json else render_info(info))
    return 0


def _bound_inputs(
    path: str, config: Config, call: bool = True
) -> tuple[Mapping[str, Sequence[int]] | None, dict[str, Any], Sequence[str]]:
    """The shapes a run would measure at, the constant values it would feed (a sample rate,
    lengths: they may decide shapes and branches), and the notices that say why. Where a
    first run could fail at guessed sizes and go on to others, ``call`` makes it
    (:func:`_attempt_that_runs`). With no input flag, a model whose inputs cannot be planned
    (an input that is not a tensor, ...) is counted at its own dims instead of refused: info
    describes any model it can read."""
    from ..errors import InputError
    from ..facts.modelfile import load_proto
    from ..measure.plan import MAX_ATTEMPTS, shapes_for_file

    model = load_proto(path)  # read once: planned below as shapes_for_file plans
    try:
        shapes, notices, may_retry = shapes_for_file(path, config, model=model)
    except InputError as exc:
        if config.shapes or config.dims or config.batch is not None or config.inputs_file is not None:
            raise
        return None, {}, [f"MACs at the model's own dims (dynamic ones as 1): {exc}"]
    if not may_retry:
        return shapes, _constant_values(path, config, model), notices
    if not call:
        notices.append(
            "these are the sizes a run tries first; if its first run fails at them, the run tries "
            f"other guesses (up to {MAX_ATTEMPTS} sets) and measures at the first that runs "
            "(info without --no-call makes that first run and counts at them)"
        )
        return shapes, _constant_values(path, config, model), notices
    attempt, why = _attempt_that_runs(path, config)
    if attempt:
        shapes, notices, _ = shapes_for_file(path, config, attempt, model)
    notices.append(why)
    return shapes, _constant_values(path, config, model, attempt or 0), notices


def _attempt_that_runs(path: str, config: Config) -> tuple[int | None, str]:
    """Which of the candidate sizes a run measures at (None: none, or a generation), found as
    the run finds it: a session and its first run (no timing), and the notice that says so."""
    from ..errors import InferspeedError
    from ..measure.session import Session

    try:
        with Session(path, config) as s:
            attempt = s.first_run_attempt
    except InferspeedError as exc:
        why = "a first run at these sizes (and the other guesses) failed: counted at the sizes tried first"
        return None, f"{why}; {exc}"
    if attempt is None:
        return None, "a run generates with this decoder, its shapes growing step by step: counted at one call"
    if attempt == 0:
        return 0, "a first run at these sizes ran (info made it as run does): run measures at them"
    return attempt, (
        f"counted at the sizes run measures at: its first run failed at the sizes tried first and ran "
        f"at these (candidate set {attempt + 1}; info made it as run does)"
    )


def _constant_values(path: str, config: Config, model: ModelFile | None, attempt: int = 0) -> dict[str, Any]:
    """Input values known before a run, as JSON numbers or lists: small arrays of --inputs,
    numbers given with --input, the constants the input plan of ``model`` (the file's
    structure, as shapes_for_file plans it) chooses (zeros, ones, a value) at candidate set
    ``attempt``."""
    from ..facts.signature import file_inputs
    from ..measure.plan import plan_inputs, read_npz

    arrays = read_npz(config.inputs_file) if config.inputs_file is not None else {}
    values: dict[str, Any] = {k: a.tolist() for k, a in arrays.items() if a.size <= 64}
    for name, text in config.values.items():
        try:
            values.setdefault(name, float(text) if "." in str(text) or "e" in str(text) else int(text))
        except (TypeError, ValueError):
            continue  # not a number: the run says what is wrong with it
    shapes = {k: tuple(a.shape) for k, a in arrays.items()}
    plan = plan_inputs(file_inputs(model), config, model, attempt, shapes, path)
    for name, c in plan.choices.items():
        if c.fill in ("value", "zeros", "ones") and name not in values:
            values[name] = {"value": c.low, "zeros": 0, "ones": 1}[c.fill]
        elif c.fill == "values" and name not in values and len(c.shape) <= 1:
            values[name] = list(c.values) if c.shape else c.values[0]
    return values
