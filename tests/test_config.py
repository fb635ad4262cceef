import pytest

from inferspeed import Config, ConfigError, ProviderSpec
from inferspeed.config import DEFAULT_MAX_TIME, DEFAULT_WARMUP_TIME


def test_defaults_live_in_config() -> None:
    c = Config()
    assert c.loop_limits == (None, DEFAULT_MAX_TIME)
    assert c.warmup_limits == (None, DEFAULT_WARMUP_TIME)
    # An explicit iteration count alone is not capped by the default time limit.
    assert Config(iterations=100).loop_limits == (100, None)
    assert Config(warmup_iterations=5).warmup_limits == (5, None)
    d = Config(iterations=100).to_dict()
    assert d["iterations"] == 100 and d["max_time"] is None and d["mode"] == "binding"


def test_frozen_and_normalised() -> None:
    c = Config(providers=["CPU"], shapes={"x": [1, 2]}, session_config={"a": 1})
    assert c.providers == (ProviderSpec("CPUExecutionProvider"),)
    assert c.shapes["x"] == (1, 2)
    assert c.session_config["a"] == "1"
    with pytest.raises(AttributeError):
        c.threads = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        c.shapes["y"] = (1,)  # type: ignore[index]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threads": 0},
        {"threads": -1},
        {"threads": 1.5},
        {"threads": True},
        {"graph_optimization": "max"},
        {"execution_mode": "async"},
        {"mode": "fast"},
        {"iterations": 0},
        {"max_time": 0},
        {"max_time": -1},
        {"max_time": float("nan")},
        {"warmup_time": -0.1},
        {"warmup_iterations": -1},
        {"shapes": {"x": [1, 0]}},
        {"shapes": {"x": [1, -3]}},
        {"shapes": {"x": 5}},
        {"dims": {"batch": 0}},
        {"ranges": {"x": (3, 1)}},
        {"ranges": {"x": (1,)}},
        {"seed": -1},
        {"providers": [42]},
        {"max_input_bytes": 0},
    ],
)
def test_invalid_values_raise_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Config(**kwargs)  # type: ignore[arg-type]


def test_unknown_option_names() -> None:
    with pytest.raises(ConfigError, match="unknown option: thread"):
        Config.from_options(thread=1)
    base = Config(threads=2)
    assert Config.from_options(base, mode="run") == Config(threads=2, mode="run")
