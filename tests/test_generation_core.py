"""The core's generation loop (_core.Session.generate) on the toy decoder of tests/toy_decoder.py:
its tokens against a plain onnxruntime loop, the cache buffers it swaps instead of copying, its
timings, its stops and its errors."""

from __future__ import annotations

import _thread
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from onnx import TensorProto as T

from inferspeed import OrtError, _core
from inferspeed.facts import ortlib as _ortlib

from .toy_decoder import ToyDecoder, ToyOptions, build_toy_decoder, reference_tokens

Toys = Callable[..., ToyDecoder]


@pytest.fixture(scope="module")
def runtime() -> _core.Runtime:
    return _ortlib.load_runtime()


@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> Toys:
    """toys(**options): the toy decoder with those options, written once per module."""
    folder: Path = tmp_path_factory.mktemp("toys")
    made: dict[ToyOptions, ToyDecoder] = {}

    def make(**options: Any) -> ToyDecoder:
        o = ToyOptions(**options)
        if o not in made:
            made[o] = build_toy_decoder(folder / f"toy{len(made)}.onnx", o)
        return made[o]

    return make


def _prompt(batch: int, tokens: int, seed: int = 0) -> npt.NDArray[np.int64]:
    return np.random.default_rng(seed).integers(0, 64, (batch, tokens)).astype(np.int64)


def _generate(
    runtime: _core.Runtime,
    toy: ToyDecoder,
    prompt: npt.NDArray[np.int64],
    gen_tokens: int,
    *,
    warmup: int = 1,
    reps: int = 2,
    max_ns: int = 0,
    **spec: Any,
) -> dict[str, Any]:
    session = _core.Session(runtime, toy.path, intra_op_threads=1)
    return session.generate(
        **toy.generate_kwargs(**spec),
        prompt_ids=prompt,
        gen_tokens=gen_tokens,
        warmup=warmup,
        max_repetitions=reps,
        max_ns=max_ns,
    )


@pytest.mark.parametrize(
    ("prompt_tokens", "gen_tokens", "batch"), [(1, 1, 1), (4, 12, 2), (7, 5, 3), (2, 20, 1)]
)
def test_tokens_equal_a_plain_onnxruntime_loop(
    runtime: _core.Runtime, toys: Toys, prompt_tokens: int, gen_tokens: int, batch: int
) -> None:
    toy = toys()
    prompt = _prompt(batch, prompt_tokens)
    expected = reference_tokens(toy, prompt, gen_tokens)
    r = _generate(runtime, toy, prompt, gen_tokens, reps=3)
    assert r["tokens"].shape == (3, batch, gen_tokens) and r["tokens"].dtype == np.int64
    for rep in r["tokens"]:
        np.testing.assert_array_equal(rep, expected)
    if gen_tokens >= 5:
        # The toy's tokens depend on the positions and on the past: a loop that got either
        # wrong could not match.
        assert (reference_tokens(toy, prompt, gen_tokens, positions_from_zero=True) != expected).any()
        assert (reference_tokens(toy, prompt, gen_tokens, zero_past=True) != expected).any()


VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (toy options, generate() overrides)
    "float16 cache and logits, int32 ids/mask/positions": (
        {
            "cache_code": T.FLOAT16,
            "logits_code": T.FLOAT16,
            "ids_code": T.INT32,
            "mask_code": T.INT32,
            "position_code": T.INT32,
        },
        {},
    ),
    "one kv head of eight": ({"heads": 8, "kv_heads": 1, "head_size": 4}, {}),
    "merged: use_cache_branch, cache_position, an extra input": (
        {"use_cache_branch": True, "cache_position": True, "extra_input": True},
        {},
    ),
    "merged with a dummy prefill past": (
        {"use_cache_branch": True, "cache_position": True, "extra_input": True},
        {"prefill_past": 1},
    ),
    "no position_ids": ({"position_ids": False}, {}),
    "GroupQueryAttention, past and present apart": ({"attention": "gqa"}, {}),
    "GroupQueryAttention, one shared buffer": (
        {"attention": "gqa"},
        {"share_buffer": True, "max_length": 48},
    ),
    "GroupQueryAttention, shared buffer of the generation's length": (
        {"attention": "gqa"},
        {"share_buffer": True},
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_equal_a_plain_onnxruntime_loop(runtime: _core.Runtime, toys: Toys, variant: str) -> None:
    options, overrides = VARIANTS[variant]
    toy = toys(**options)
    prompt = _prompt(2, 5, seed=3)
    expected = reference_tokens(toy, prompt, 9, prefill_past=overrides.get("prefill_past", 0))
    r = _generate(runtime, toy, prompt, 9, **overrides)
    for rep in r["tokens"]:
        np.testing.assert_array_equal(rep, expected)
    if options.get("extra_input"):
        other = _generate(runtime, toy, prompt, 9, extra_inputs={"extra_scale": np.array([-4.0], np.float32)})
        assert (other["tokens"][0] != expected).any()  # the extra input's value is the one bound


@dataclasses.dataclass(frozen=True)
class _Cache:
    """Shaped like inferspeed.facts.decoder.CacheTensor."""

    past: str
    present: str
    element_code: int
    shape: tuple[int, ...]
    batch_axis: int
    seq_axis: int


def test_caches_as_objects_tuples_or_dicts(runtime: _core.Runtime, toys: Toys) -> None:
    toy = toys()
    prompt = _prompt(1, 3)
    tuples = toy.generate_kwargs()["caches"]
    forms = {
        "objects": [_Cache(*c) for c in tuples],
        "dicts": [dataclasses.asdict(_Cache(*c)) for c in tuples],
    }
    expected = reference_tokens(toy, prompt, 5)
    for form, caches in forms.items():
        r = _generate(runtime, toy, prompt, 5, caches=caches)
        np.testing.assert_array_equal(r["tokens"][0], expected, err_msg=form)


def test_result_shapes_and_times(runtime: _core.Runtime, toys: Toys) -> None:
    toy = toys()
    r = _generate(runtime, toy, _prompt(3, 6), 8, warmup=2, reps=4)
    assert r["repetitions"] == 4 and r["last_steps"] == 8
    assert not r["interrupted"] and not r["capped"]
    for key in ("step_ns", "sample_ns"):
        assert r[key].shape == (4, 8) and r[key].dtype == np.int64 and (r[key] > 0).all()
    assert r["generation_ns"].shape == (4,) and r["warmup_ns"].shape == (2,)
    # A generation's wall time holds its steps, its choices and its rebinding.
    assert (r["generation_ns"] > r["step_ns"].sum(axis=1) + r["sample_ns"].sum(axis=1)).all()
    assert r["end_ns"] - r["start_ns"] >= r["generation_ns"].sum()
    assert r["prefill_logits_shape"] == [3, 6, 64] and r["decode_logits_shape"] == [3, 1, 64]
    assert r["preallocated_outputs"] == ["logits"]
    one = _generate(runtime, toy, _prompt(1, 3), 1, reps=2)
    assert one["step_ns"].shape == (2, 1) and one["decode_logits_shape"] == []


def test_outputs_learned_without_warmup(runtime: _core.Runtime, toys: Toys) -> None:
    """Without a warm-up the first repetition runs with outputs that ONNX Runtime allocates,
    the next ones with the buffers its shapes told the loop to make: same tokens."""
    toy = toys()
    prompt = _prompt(2, 3)
    r = _generate(runtime, toy, prompt, 6, warmup=0, reps=3)
    assert r["warmup_ns"].shape == (0,) and r["preallocated_outputs"] == ["logits"]
    for rep in r["tokens"]:
        np.testing.assert_array_equal(rep, reference_tokens(toy, prompt, 6))


@pytest.mark.parametrize("gen_tokens", [5, 6])
def test_cache_buffers_are_swapped_not_copied(runtime: _core.Runtime, toys: Toys, gen_tokens: int) -> None:
    """Two buffers per cache tensor, preallocated for the whole generation: step s writes its
    present into the buffer that step s + 1 reads as its past. After the last step (index
    gen_tokens - 1) the present ONNX Runtime holds lies in buffer gen_tokens % 2: it wrote
    into ours (and the tokens, equal to the plain loop's, show the next step read it there)."""
    toy = toys()
    batch, prompt_tokens = 2, 4
    r = _generate(runtime, toy, _prompt(batch, prompt_tokens), gen_tokens, reps=3)
    buffers = r["buffer_addresses"]
    caches = 2 * toy.options.layers
    assert buffers.shape == (caches, 2) and buffers.dtype == np.uint64
    assert len(set(buffers.ravel().tolist())) == 2 * caches
    assert r["present_addresses"].shape == (3, caches)
    for rep in r["present_addresses"]:
        np.testing.assert_array_equal(rep, buffers[:, gen_tokens % 2])
    o = toy.options
    per_buffer = batch * o.kv_heads * (prompt_tokens + gen_tokens - 1) * o.head_size * 4
    assert r["cache_bytes"] == 2 * caches * per_buffer


def test_shared_buffer_is_both_past_and_present(runtime: _core.Runtime, toys: Toys) -> None:
    toy = toys(attention="gqa")
    r = _generate(runtime, toy, _prompt(2, 4), 7, share_buffer=True, max_length=40)
    buffers = r["buffer_addresses"]
    np.testing.assert_array_equal(buffers[:, 0], buffers[:, 1])
    for rep in r["present_addresses"]:
        np.testing.assert_array_equal(rep, buffers[:, 0])
    o = toy.options
    assert r["cache_bytes"] == 2 * o.layers * 2 * o.kv_heads * 40 * o.head_size * 4


@pytest.mark.parametrize("slow_step", [0, 3])
def test_a_slow_position_shows_in_its_step(runtime: _core.Runtime, toys: Toys, slow_step: int) -> None:
    prompt_tokens = 4
    # The step whose last position is prompt_tokens - 1 + slow_step runs a chain of MatMuls.
    toy = toys(slow_position=prompt_tokens - 1 + slow_step)
    r = _generate(runtime, toy, _prompt(1, prompt_tokens), 8, reps=3)
    medians = np.median(r["step_ns"], axis=0)
    others = np.delete(medians, slow_step)
    assert medians.argmax() == slow_step and medians[slow_step] > 5 * others.max(), medians


def test_the_hook_stops_it_and_keeps_what_was_measured(runtime: _core.Runtime, toys: Toys) -> None:
    """Ctrl-C seen between steps (here simulated: no signal reaches ONNX Runtime) stops the
    generation; the repetitions so far are kept, the last one partial, padded with -1."""
    toy = toys(slow_position=20)  # each generation has one step of a few ms
    prompt = _prompt(2, 3)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        r = _generate(runtime, toy, prompt, 40, reps=10**6, max_ns=30 * 10**9)
    finally:
        timer.cancel()
    assert r["interrupted"] and r["repetitions"] >= 1
    done = r["last_steps"]
    assert 1 <= done <= 40
    last_steps, last_tokens = r["step_ns"][-1], r["tokens"][-1]
    assert (last_steps[:done] > 0).all() and (last_steps[done:] == -1).all()
    assert (r["sample_ns"][-1][done:] == -1).all() and (last_tokens[:, done:] == -1).all()
    expected = reference_tokens(toy, prompt, 40)
    np.testing.assert_array_equal(last_tokens[:, :done], expected[:, :done])
    assert r["step_ns"].shape == (r["repetitions"], 40) and (r["step_ns"][:-1] > 0).all()


@pytest.mark.parametrize("warmup", [0, 1])
def test_a_signal_stops_a_step_in_progress(runtime: _core.Runtime, toys: Toys, warmup: int) -> None:
    """A step of minutes (step 2's MatMul chain): SIGINT sets ONNX Runtime's terminate flag, the
    step returns at once and is not counted. Stopped in the warm-up: no repetition."""
    toy = toys(slow_position=4, slow_size=1024, slow_repeats=400)
    session = _core.Session(runtime, toy.path, intra_op_threads=1)
    kwargs = toy.generate_kwargs()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    # Should the signal not stop the step, a second one does (a failure, not an hour's hang).
    watchdog = threading.Timer(15, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        watchdog.start()
        t0 = time.monotonic()
        r = session.generate(
            **kwargs, prompt_ids=_prompt(1, 3), gen_tokens=6, warmup=warmup, max_repetitions=5
        )
        took = time.monotonic() - t0
    finally:
        timer.cancel()
        watchdog.cancel()
        signal.signal(signal.SIGINT, previous)
    assert r["interrupted"] and took < 5, took
    if warmup:
        assert r["repetitions"] == 0 and r["step_ns"].shape == (0, 6) and r["tokens"].shape == (0, 1, 6)
    else:
        assert r["repetitions"] == 1 and r["last_steps"] == 2
        assert (r["step_ns"][0, :2] > 0).all() and (r["step_ns"][0, 2:] == -1).all()
    # No terminate flag left set: a generation that stays clear of the slow step runs.
    again = session.generate(**kwargs, prompt_ids=_prompt(1, 3), gen_tokens=2, max_repetitions=2)
    assert not again["interrupted"] and again["repetitions"] == 2


def test_gil_released_during_generation(runtime: _core.Runtime, toys: Toys) -> None:
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        r = _generate(runtime, toys(), _prompt(1, 4), 16, reps=0, max_ns=500_000_000)
    finally:
        stop.set()
        worker.join()
    assert r["end_ns"] - r["start_ns"] >= 500_000_000
    # Holding the GIL for 0.5 s would leave the thread a few switch intervals (5 ms each).
    assert ticks > 100_000


def test_time_budget_ends_after_a_whole_generation(runtime: _core.Runtime, toys: Toys) -> None:
    r = _generate(runtime, toys(), _prompt(1, 4), 10, reps=0, max_ns=100_000_000)
    assert r["repetitions"] > 1 and r["last_steps"] == 10 and not r["interrupted"]
    elapsed = r["end_ns"] - r["start_ns"]
    assert 100_000_000 <= elapsed < 100_000_000 + 20 * int(r["generation_ns"].max()) + 50_000_000
    capped = _generate(runtime, toys(), _prompt(1, 4), 10, reps=3, max_ns=10**12)
    assert capped["repetitions"] == 3


def test_an_ort_error_names_the_step_and_past_length(runtime: _core.Runtime, toys: Toys) -> None:
    """Position 8 is past the toy's position table of 8: step 5 (prompt of 4) fails."""
    toy = toys(max_positions=8)
    with pytest.raises(OrtError, match=r"generation step 5 \(decode, past length 8\): "):
        _generate(runtime, toy, _prompt(1, 4), 10)


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    # name: (generate() overrides, message)
    "input without a value": ({"attention_mask": None}, "model input 'attention_mask' gets no value"),
    "ids of the wrong type": ({"ids_code": 6}, "'input_ids' is int64 in the model, not int32"),
    "unknown input": ({"position_ids": "positions"}, "no input named 'positions'"),
    "wrong head count": (
        {"caches": [("past_key_values.0.key", "present.0.key", 1, (1, 3, 1, 8), 0, 2)]},
        "has shape",
    ),
    "batch and sequence on one axis": (
        {"caches": [("past_key_values.0.key", "present.0.key", 1, (1, 2, 1, 8), 2, 2)]},
        "two axes",
    ),
    "logits that are a present": ({"logits": "present.0.key"}, "cannot be a cache's present"),
    "prompt id outside the vocabulary": ({"prompt_ids": np.array([[64]])}, "not a token"),
    "no tokens": ({"gen_tokens": 0}, "at least 1"),
    "no limit": ({"max_repetitions": 0, "max_ns": 0}, "needs a limit"),
    "max_length too small": ({"max_length": 8}, "needs 12 positions"),
    "shared buffer with a dummy past": ({"share_buffer": True, "prefill_past": 1}, "dummy"),
    "one-dimensional prompt": ({"prompt_ids": np.array([1, 2])}, r"\[batch, prompt tokens\]"),
    "float prompt": ({"prompt_ids": np.ones((1, 2))}, "integers"),
    "extra input of no known type": ({"extra_inputs": {"input_ids": np.array(["a"])}}, "unsupported dtype"),
    "input given twice": ({"extra_inputs": {"input_ids": np.ones((1, 4), np.int64)}}, "given twice"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_specs_raise_value_error(runtime: _core.Runtime, toys: Toys, case: str) -> None:
    overrides, message = INVALID[case]
    toy = toys()
    session = _core.Session(runtime, toy.path)
    arguments = {"prompt_ids": _prompt(1, 4), "gen_tokens": 9, "max_repetitions": 1}
    with pytest.raises(ValueError, match=message):
        session.generate(**{**toy.generate_kwargs(), **arguments, **overrides})
