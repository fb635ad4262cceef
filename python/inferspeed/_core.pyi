"""Type stubs of the compiled core (cpp/bindings). Keep in step with the bindings."""

import collections.abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .errors import OrtError as OrtError
from .errors import RuntimeLoadError as RuntimeLoadError

__version__: str

class CallMode:
    binding: ClassVar[CallMode]
    run: ClassVar[CallMode]
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class Runtime:
    api_version: ClassVar[int]
    @staticmethod
    def load(library_path: str, log_level: int = 4) -> Runtime: ...
    @property
    def path(self) -> str: ...
    @property
    def version(self) -> str: ...
    def available_providers(self) -> list[str]: ...

class Session:
    def __init__(
        self,
        runtime: Runtime,
        model_path: str,
        *,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        graph_optimization_level: int = 99,
        parallel_execution: bool = False,
        cpu_mem_arena: bool = True,
        mem_pattern: bool = True,
        profile_prefix: str = "",
        config_entries: Sequence[tuple[str, str]] = ...,
        providers: Sequence[tuple[str, Sequence[tuple[str, str]]]] = ...,
    ) -> None: ...
    def end_profiling(self) -> str: ...
    @property
    def inputs(self) -> list[dict[str, Any]]: ...
    @property
    def outputs(self) -> list[dict[str, Any]]: ...
    def set_input_set_count(self, count: int) -> None: ...
    @property
    def input_set_count(self) -> int: ...
    def bind_input(
        self, name: str, array: npt.NDArray[Any], element_type: int, shape: Sequence[int], set: int = 0
    ) -> None: ...
    def bind_string_input(
        self, name: str, shape: Sequence[int], values: Sequence[str], set: int = 0
    ) -> None: ...
    def bind_sequence_input(
        self,
        name: str,
        arrays: Sequence[np.ndarray],
        element_type: int,
        shape: Sequence[int],
        set: int = 0,
    ) -> None: ...
    def bind_map_input(
        self,
        name: str,
        keys: np.ndarray,
        values: np.ndarray,
        key_type: int,
        value_type: int,
        set: int = 0,
    ) -> None: ...
    def prepare(self) -> None: ...
    @property
    def busy(self) -> bool: ...
    @property
    def outputs_preallocated(self) -> bool: ...
    @property
    def binding_usable(self) -> bool: ...
    @property
    def binding_error(self) -> str: ...
    @property
    def create_ns(self) -> int: ...
    @property
    def first_run_ns(self) -> int: ...
    @property
    def untimed_calls(self) -> int: ...
    def closed_loop(
        self,
        mode: CallMode,
        max_iterations: int = 0,
        max_ns: int = 0,
        chunk_ns: int = 20000000,
        flusher: CacheFlusher | None = None,
    ) -> dict[str, Any]: ...
    def counted_calls(
        self, mode: CallMode, warmup: int, calls: int, client_requests: bool = True
    ) -> dict[str, Any]: ...
    def generate(
        self,
        *,
        input_ids: str,
        ids_code: int = 7,
        attention_mask: str | None = None,
        mask_code: int = 7,
        position_ids: str | None = None,
        position_code: int = 7,
        cache_position: str | None = None,
        use_cache_branch: str | None = None,
        caches: Sequence[Any],  # CacheTensor, or its six fields as a tuple or a dict
        logits: str,
        vocab: int | None = None,
        share_buffer: bool = False,
        max_length: int | None = None,
        prefill_past: int = 0,
        extra_inputs: collections.abc.Mapping[str, npt.NDArray[Any]] = ...,
        lengths: Sequence[Any] = (),  # LengthInput, or its five fields as a tuple
        prompt_ids: npt.NDArray[np.integer[Any]],
        gen_tokens: int,
        warmup: int = 1,
        max_repetitions: int = 0,
        max_ns: int = 0,
    ) -> dict[str, Any]: ...
    def generation(
        self,
        *,
        input_ids: str,
        ids_code: int = 7,
        attention_mask: str | None = None,
        mask_code: int = 7,
        position_ids: str | None = None,
        position_code: int = 7,
        cache_position: str | None = None,
        use_cache_branch: str | None = None,
        caches: Sequence[Any],
        logits: str,
        vocab: int | None = None,
        share_buffer: bool = False,
        max_length: int | None = None,
        prefill_past: int = 0,
        extra_inputs: collections.abc.Mapping[str, npt.NDArray[Any]] = ...,
        lengths: Sequence[Any] = (),  # LengthInput, or its five fields as a tuple
        prompt_ids: npt.NDArray[np.integer[Any]],
        gen_tokens: int,
    ) -> Generation: ...

class Generation:
    def run(self, *, warmup: int = 0, max_repetitions: int = 0, max_ns: int = 0) -> dict[str, Any]: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def gen_tokens(self) -> int: ...

def generation_load(
    streams: Sequence[Generation],
    arrivals_ns: Sequence[int],
    *,
    spin_ns: int = 200000,
    chunk_ns: int = 20000000,
    stop_after_ns: int = 0,
    prompt_tokens: Sequence[int] = ...,
    gen_tokens: Sequence[int] = ...,
) -> dict[str, Any]: ...
def callgrind_client_requests() -> bool: ...
def running_on_valgrind() -> bool: ...
def cpu_extensions() -> list[str]: ...

class CacheFlusher:
    def __init__(self, bytes: int, line_bytes: int = 0, every_cpu: bool = True) -> None: ...
    def flush(self) -> None: ...
    @property
    def bytes(self) -> int: ...
    @property
    def line_bytes(self) -> int: ...
    @property
    def cpus(self) -> list[int]: ...
    @property
    def private_bytes(self) -> int: ...

build_ort_include_dir: str  # where the build found onnxruntime_c_api.h

def now_ns() -> int: ...
def measure_clock(pairs: int = 200000) -> dict[str, int]: ...
def speed_probe(repeats: int = 5) -> npt.NDArray[np.int64]: ...

PROBE_STEPS: int

def run_server(
    session: Session,
    mode: CallMode,
    arrivals_ns: Sequence[int],
    concurrency: int,
    spin_ns: int = 200000,
    chunk_ns: int = 20000000,
) -> dict[str, Any]: ...
def run_offline(
    session: Session,
    mode: CallMode,
    duration_ns: int,
    concurrency: int,
    expected_per_worker: int = 0,
    chunk_ns: int = 20000000,
) -> dict[str, Any]: ...
def time_callable(
    fn: Callable[..., Any],
    args: tuple[Any, ...] = ...,
    kwargs: dict[str, Any] = ...,
    max_iterations: int = 0,
    max_ns: int = 0,
    chunk_ns: int = 20000000,
    batch: int = 1,
) -> dict[str, Any]: ...
