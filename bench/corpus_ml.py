"""Classic-ML conversions for bench/corpus.py, made in a side venv with skl2onnx and onnxmltools.

    /work/corpus-venv/bin/python bench/corpus_ml.py OUT_FOLDER

The side venv: ``python -m venv /work/corpus-venv`` and ``/work/corpus-venv/bin/pip install
skl2onnx onnxmltools scikit-learn pandas lightgbm xgboost-cpu onnx onnxruntime``. Each model is
trained on a few rows of generated data and written as ``OUT/NAME/model.onnx`` with its test
inputs in ``OUT/NAME/test_data_set_0/input_J.pb`` (onnx's layout); ``OUT/done`` marks the set
complete. The models: ZipMap outputs (a list of maps), string inputs, a DictVectorizer's map
input, several inputs of different types, LightGBM and XGBoost.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from onnx import MapProto, TensorProto, numpy_helper

RNG = np.random.default_rng(0)
X = RNG.random((60, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 1).astype(np.int64)
Y3 = (X[:, 0] * 3).astype(np.int64)
WORDS = np.array(["red", "green", "blue", "cyan"])
TEXT = np.array([" ".join(RNG.choice(WORDS, 3)) for _ in range(60)])


def _sklearn(estimator: Any, x: Any, y: Any, types: list[Any], **options: Any) -> Any:
    from skl2onnx import convert_sklearn

    estimator.fit(x, y)
    return convert_sklearn(estimator, initial_types=types, target_opset={"": 17, "ai.onnx.ml": 3}, **options)


def _float(n: int = 4) -> list[Any]:
    from skl2onnx.common.data_types import FloatTensorType

    return [("X", FloatTensorType([None, n]))]


def _string() -> list[Any]:
    from skl2onnx.common.data_types import StringTensorType

    return [("text", StringTensorType([None, 1]))]


def logistic_zipmap() -> tuple[Any, list[Any]]:
    from sklearn.linear_model import LogisticRegression

    return _sklearn(LogisticRegression(), X, Y3, _float()), [X[:5]]


def forest_zipmap() -> tuple[Any, list[Any]]:
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)
    return _sklearn(forest, X, Y, _float()), [X[:5]]


def scaler_svr() -> tuple[Any, list[Any]]:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    return _sklearn(make_pipeline(StandardScaler(), SVR()), X, X[:, 2], _float()), [X[:5]]


def kmeans() -> tuple[Any, list[Any]]:
    from sklearn.cluster import KMeans

    return _sklearn(KMeans(n_clusters=3, n_init=2, random_state=0), X, None, _float()), [X[:5]]


def onehot_strings() -> tuple[Any, list[Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    words = RNG.choice(WORDS, (60, 1))
    pipe = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression())
    return _sklearn(pipe, words, Y, _string(), options={"zipmap": False}), [words[:5]]


def tfidf_text() -> tuple[Any, list[Any]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    model = _sklearn(TfidfVectorizer(), TEXT, None, _string())
    return model, [TEXT[:5].reshape(-1, 1)]


def dictvectorizer_map() -> tuple[Any, list[Any]]:
    from skl2onnx.common.data_types import DictionaryType, FloatTensorType, StringTensorType
    from sklearn.feature_extraction import DictVectorizer

    rows = [{str(w): float(v) for w, v in zip(WORDS, r, strict=False)} for r in X]
    model = _sklearn(DictVectorizer(sparse=False), rows, None,
                     [("features", DictionaryType(StringTensorType([]), FloatTensorType([])))])  # fmt: skip
    return model, [{k: np.float32(v) for k, v in rows[0].items()}]


def mixed_columns() -> tuple[Any, list[Any]]:
    import pandas as pd
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.DataFrame({"num": X[:, 0], "cat": RNG.choice(WORDS, 60)})
    columns = ColumnTransformer([("n", StandardScaler(), ["num"]), ("c", OneHotEncoder(), ["cat"])])
    types = [("num", FloatTensorType([None, 1])), ("cat", StringTensorType([None, 1]))]
    model = _sklearn(make_pipeline(columns, LogisticRegression()), frame, Y, types)
    return model, [X[:5, :1], frame["cat"].to_numpy()[:5].reshape(-1, 1)]


def lightgbm_classifier() -> tuple[Any, list[Any]]:
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    clf = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, Y3)
    return convert_lightgbm(clf, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=15), [X[:5]]


def lightgbm_regressor() -> tuple[Any, list[Any]]:
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    reg = lightgbm.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1).fit(X, X[:, 1])
    return convert_lightgbm(reg, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=15), [X[:5]]


def xgboost_classifier() -> tuple[Any, list[Any]]:
    import xgboost
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    clf = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y)
    return convert_xgboost(clf, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=15), [X[:5]]


def xgboost_regressor() -> tuple[Any, list[Any]]:
    import xgboost
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    reg = xgboost.XGBRegressor(n_estimators=5, max_depth=2).fit(X, X[:, 1])
    return convert_xgboost(reg, initial_types=[("X", FloatTensorType([None, 4]))], target_opset=15), [X[:5]]


MODELS: dict[str, Callable[[], tuple[Any, list[Any]]]] = {
    f.__name__: f
    for f in (logistic_zipmap, forest_zipmap, scaler_svr, kmeans, onehot_strings, tfidf_text,
              dictvectorizer_map, mixed_columns, lightgbm_classifier, lightgbm_regressor,
              xgboost_classifier, xgboost_regressor)
}  # fmt: skip


def _proto(value: Any, info: Any) -> Any:
    kind = info.type.WhichOneof("value")
    if kind == "map_type":  # numpy_helper.from_dict takes no string keys
        proto = MapProto(name=info.name, key_type=TensorProto.STRING)
        proto.string_keys.extend(k.encode() for k in value)
        proto.values.CopyFrom(numpy_helper.from_list([np.asarray(v) for v in value.values()]))
        return proto
    return numpy_helper.from_array(np.asarray(value), info.name)


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, make in MODELS.items():
        try:
            model, inputs = make()
        except Exception as exc:  # one model that does not convert does not stop the others
            failed.append(f"{name}: {type(exc).__name__}: {exc}".splitlines()[0])
            continue
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "test_data_set_0").mkdir(parents=True)
        (folder / "model.onnx").write_bytes(model.SerializeToString())
        for j, (value, info) in enumerate(zip(inputs, model.graph.input, strict=True)):
            data = _proto(value, info).SerializeToString()
            (folder / "test_data_set_0" / f"input_{j}.pb").write_bytes(data)
    for line in failed:
        print(f"not converted: {line}", file=sys.stderr)
    (out / "done").write_text("\n".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
