"""Two ONNX Runtime versions compared in one process: the installed wheel against another.

Fetches the other version's wheel with pip (``pip download onnxruntime==VERSION --no-deps``,
the package registry through its normal client) into the user's cache, takes its
``libonnxruntime.so.*`` out of it (nothing is installed), then runs

    inferspeed gate MODEL --base-ort-lib OTHER --threads 1

which loads both libraries into one process and measures the model under each, interleaved in
randomised rounds, and prints the paired verdict. MODEL defaults to an MLP of 20 layers of 256
(batch 1), made here.

    python bench/two_runtimes.py                     # 1.24.4 against the installed wheel
    python bench/two_runtimes.py --version 1.20.1 --model m.onnx
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import onnx

from inferspeed.facts.models import mlp_model
from inferspeed.facts.ortlib import find_library


def cache_dir() -> Path:
    base = os.environ.get("INFERSPEED_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inferspeed"
    )
    return Path(base) / "runtimes"


def fetch(version: str) -> Path:
    """libonnxruntime.so of onnxruntime ``version`` from its wheel, kept in the cache."""
    folder = cache_dir() / version
    found = sorted(folder.glob("libonnxruntime.so*"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            f"onnxruntime=={version}",
            "-d",
            tmp,
        ]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("onnxruntime-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if "/capi/libonnxruntime.so" in name:
                    (folder / Path(name).name).write_bytes(z.read(name))
    return next(folder.glob("libonnxruntime.so*"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="1.24.4", help="the other onnxruntime version (default 1.24.4)")
    ap.add_argument("--model", help="model file (default: an MLP 20x256 made here)")
    ap.add_argument("--max-time", default="8", help="timed seconds per runtime (default 8)")
    args = ap.parse_args()
    other = fetch(args.version)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            model = os.path.join(tmp, "mlp20x256.onnx")
            onnx.save(mlp_model(layers=20, width=256, batch=1), model)
        print(f"baseline: {other}\ncandidate: {find_library()}", flush=True)
        cmd = [sys.executable, "-m", "inferspeed", "gate", model, "--base-ort-lib", str(other)]
        cmd += ["--threads", "1", "--max-time", args.max_time]
        raise SystemExit(subprocess.run(cmd).returncode)


if __name__ == "__main__":
    main()
