"""Write the tiny random-weight decoder fixtures under tests/data/decoders/ (see its README.md).

The models are built from configs with seeded random weights (nothing comes from a model hub),
then exported by the tools users export decoders with: optimum-onnx (``text-generation-with-past``,
and a merged decoder with ``use_cache_branch`` from optimum's ``merge_decoders``), onnxruntime's
``quantize_dynamic`` and onnxruntime-genai's model builder. A legacy ``past.N`` / ``present.N``
variant is made from the GPT-2 export with onnx. The script also records, in ``manifest.json``,
each fixture's inputs and outputs as onnxruntime reports them, the greedy tokens that the
PyTorch model and onnxruntime-genai's own generator give for a fixed prompt, and those of
``tests/decoder_reference.py``, and it fails if they disagree.

Two virtual environments, since optimum-onnx 0.1.0 requires transformers < 4.58 while the
builder of onnxruntime-genai 0.18.0 imports classes that only transformers 5 has::

    python3.11 -m venv /work/gen-venv
    /work/gen-venv/bin/pip install torch==2.13.0 transformers==4.57.6 optimum-onnx==0.1.0 \\
        onnxruntime-genai==0.18.0 tokenizers==0.22.2 onnx==1.23.2 onnxruntime==1.32.0 numpy
    python3.11 -m venv /work/gen-venv-genai
    /work/gen-venv-genai/bin/pip install torch==2.13.0 transformers==5.25.0 onnxruntime-genai==0.18.0 \\
        onnx_ir==1.1.0 onnx==1.23.2 onnxruntime==1.32.0 numpy

Rerun from the repository root (about 15 s on 2 cores)::

    HF_HUB_OFFLINE=1 /work/gen-venv/bin/python bench/make_decoders.py \\
        --genai-python /work/gen-venv-genai/bin/python

The weights are seeded and the exporters deterministic once the string hash is (the script
reruns itself with ``PYTHONHASHSEED=0``): a rerun with these versions writes the same bytes
(checked by comparing every file's hash over reruns).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import onnx
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "decoders"
VOCAB = 512
# The prompt the manifest's tokens are for: two rows of five tokens, and twelve tokens generated.
PROMPT = [[242, 262, 386, 486, 18], [74, 421, 485, 128, 160]]
GEN_TOKENS = 12
PACKAGES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "onnxruntime-genai")


def _reference() -> Any:
    """tests/decoder_reference.py, loaded by path (tests/ is not on this environment's path)."""
    spec = importlib.util.spec_from_file_location(
        "decoder_reference", ROOT / "tests" / "decoder_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def make_tokenizer(folder: Path) -> None:
    """A byte-level BPE of 512 tokens trained on made-up words (the genai builder wants a tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    corpus = [" ".join(rng.choice(words) for _ in range(20)) for _ in range(500)]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    special = "<|endoftext|>"
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=special, eos_token=special, unk_token=special
    )
    fast.save_pretrained(folder)


def make_hf_models(work: Path) -> dict[str, Path]:
    """The tiny GPT-2 and Llama (grouped-query attention) as Hugging Face folders, with the tokenizer."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    common: dict[str, Any] = {"vocab_size": VOCAB, "bos_token_id": 0, "eos_token_id": 0}
    # initializer_range 0.2 (not 0.02): logits far enough apart that greedy tokens vary and no
    # near-tie flips between PyTorch, onnxruntime and onnxruntime-genai.
    configs = {
        "gpt2": GPT2Config(n_positions=1024, n_embd=64, n_layer=2, n_head=4, initializer_range=0.2, **common),
        # GroupQueryAttention on CPU needs a head size that is a multiple of 16: 128 / 8 heads.
        "llama": LlamaConfig(
            hidden_size=128,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=8,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            initializer_range=0.2,
            tie_word_embeddings=False,
            **common,
        ),
        # The same GPT-2 with a third layer: a decoder slower per output token, for the gates
        # (made last, so that the other models and exports stay as they were).
        "gpt2_3layer": GPT2Config(
            n_positions=1024, n_embd=64, n_layer=3, n_head=4, initializer_range=0.2, **common
        ),
    }
    folders = {}
    for name, config in configs.items():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).eval()
        folders[name] = work / f"hf_{name}"
        model.save_pretrained(folders[name])
        make_tokenizer(folders[name])
    return folders


def torch_greedy(hf_folder: Path) -> tuple[list[list[int]], float]:
    """Greedy tokens of the PyTorch model for PROMPT, and the smallest top-1/top-2 logit gap on the way."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_folder).eval()
    ids = torch.tensor(PROMPT)
    mask = torch.ones_like(ids)
    past, tokens, gaps = None, [], []
    with torch.no_grad():
        for _ in range(GEN_TOKENS):
            out = model(input_ids=ids, attention_mask=mask, past_key_values=past, use_cache=True)
            last = out.logits[:, -1, :]
            top2 = torch.topk(last, 2, dim=-1).values
            gaps.append(float((top2[:, 0] - top2[:, 1]).min()))
            ids = last.argmax(dim=-1, keepdim=True)
            tokens.append(ids)
            past = out.past_key_values
            mask = torch.cat([mask, torch.ones_like(ids)], dim=1)
    return torch.cat(tokens, dim=1).tolist(), min(gaps)


def export_optimum(hf_folder: Path, out: Path, work: Path) -> None:
    """optimum-onnx's text-generation-with-past export; keeps model.onnx and config.json."""
    from optimum.exporters.onnx import main_export

    export = work / f"optimum_{hf_folder.name}"
    main_export(str(hf_folder), output=export, task="text-generation-with-past", do_validation=True)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "config.json"):
        shutil.copy(export / name, out / name)


def export_merged(hf_folder: Path, with_past: Path, out: Path, work: Path) -> None:
    """A merged decoder as optimum made them before 2.0: the decoder without past and the one with
    past joined by an If on ``use_cache_branch`` (optimum.onnx.merge_decoders)."""
    from optimum.exporters.onnx import main_export
    from optimum.exporters.tasks import TasksManager
    from optimum.onnx.graph_transformations import merge_decoders
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_folder)
    constructor = TasksManager.get_exporter_config_constructor(
        model=model, exporter="onnx", task="text-generation-with-past", library_name="transformers"
    )
    # use_past with no past in the inputs: the prefill decoder, whose outputs hold the present.
    no_past = constructor(model.config, use_past=True, use_past_in_inputs=False)
    export = work / f"optimum_no_past_{hf_folder.name}"
    main_export(
        str(hf_folder),
        output=export,
        task="text-generation-with-past",
        custom_onnx_configs={"model": no_past},
    )
    out.mkdir(parents=True, exist_ok=True)
    merge_decoders(export / "model.onnx", with_past, save_path=out / "model.onnx")
    shutil.copy(hf_folder / "config.json", out / "config.json")


def make_legacy(source: Path, out: Path) -> None:
    """The GPT-2 export with one cache tensor a layer, ``past.N`` → ``present.N`` of shape
    [2, batch_size, heads, past_sequence_length, head_size] (key at 0, value at 1), the layout of
    onnxruntime's own GPT-2 exporter (which names them past_N / present_N)."""
    model = onnx.load(source)
    graph = model.graph
    layers = sorted({int(i.name.split(".")[1]) for i in graph.input if i.name.startswith("past_key_values.")})
    graph.initializer.extend(
        [onnx.numpy_helper.from_array(np.array(v, dtype=np.int64), name) for name, v in _LEGACY_CONSTANTS]
    )
    old_inputs = {i.name: i for i in graph.input}
    new_inputs = [i for i in graph.input if not i.name.startswith("past_key_values.")]
    kept_outputs = [o for o in graph.output if not o.name.startswith("present.")]
    before, after, new_outputs = [], [], []
    for n in layers:
        key = old_inputs[f"past_key_values.{n}.key"].type.tensor_type
        dims = [d.dim_param or d.dim_value for d in key.shape.dim]
        new_inputs.insert(1 + n, onnx.helper.make_tensor_value_info(f"past.{n}", key.elem_type, [2, *dims]))
        out_dims = [2, dims[0], dims[1], "past_sequence_length + sequence_length", dims[3]]
        new_outputs.append(onnx.helper.make_tensor_value_info(f"present.{n}", key.elem_type, out_dims))
        for index, part in enumerate(("key", "value")):
            before.append(
                onnx.helper.make_node(
                    "Gather", [f"past.{n}", f"legacy_index_{index}"], [f"past_key_values.{n}.{part}"], axis=0
                )
            )
            after.append(
                onnx.helper.make_node(
                    "Unsqueeze", [f"present.{n}.{part}", "legacy_axis_0"], [f"present.{n}.{part}.stacked"]
                )
            )
        stacked = [f"present.{n}.key.stacked", f"present.{n}.value.stacked"]
        after.append(onnx.helper.make_node("Concat", stacked, [f"present.{n}"], axis=0))
    all_nodes = before + list(graph.node) + after
    del graph.node[:], graph.input[:], graph.output[:]
    graph.node.extend(all_nodes)
    graph.input.extend(new_inputs)
    graph.output.extend([kept_outputs[0], *new_outputs, *kept_outputs[1:]])
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out / "model.onnx")


_LEGACY_CONSTANTS = (("legacy_index_0", 0), ("legacy_index_1", 1), ("legacy_axis_0", [0]))


def quantize_int8(source: Path, out: Path) -> None:
    """onnxruntime's dynamic quantization of the GPT-2: int8 weights, activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(source, out / "model.onnx", weight_type=QuantType.QInt8)


def build_genai(hf_folder: Path, out: Path, work: Path, genai_python: str) -> None:
    """onnxruntime-genai's model builder (fp32, cpu) on the Llama; its external weights folded back
    into a single model.onnx (genai_config.json names that file either way)."""
    export = work / "genai_llama"
    command = [genai_python, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_folder)]
    command += ["-o", str(export), "-p", "fp32", "-e", "cpu", "-c", str(work / "genai_cache")]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    out.mkdir(parents=True, exist_ok=True)
    model = onnx.load(export / "model.onnx")  # with its external data
    onnx.save(model, out / "model.onnx")
    for name in ("genai_config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(export / name, out / name)


def genai_greedy(folder: Path, prompt: list[list[int]]) -> list[list[int]]:
    """The greedy tokens of onnxruntime-genai's own generator (search max_length = P + G)."""
    import onnxruntime_genai as og

    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    length = len(prompt[0]) + GEN_TOKENS
    params.set_search_options(max_length=length, do_sample=False, batch_size=len(prompt))
    generator = og.Generator(model, params)
    generator.append_tokens(np.array(prompt, dtype=np.int32))
    while not generator.is_done():
        generator.generate_next_token()
    return [list(map(int, generator.get_sequence(row)))[len(prompt[0]) :] for row in range(len(prompt))]


def signature(model: Path) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs as onnxruntime (this environment's) reports them."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])

    def describe(nodes: list[Any]) -> list[dict[str, Any]]:
        return [{"name": n.name, "shape": list(n.shape), "type": n.type} for n in nodes]

    return {"inputs": describe(session.get_inputs()), "outputs": describe(session.get_outputs())}


def check(fixture: str, got: list[list[int]], want: list[list[int]], what: str) -> None:
    """Fail loudly when the reference loop's tokens differ from another generator's."""
    print(f"{fixture}: reference loop {'==' if got == want else '!='} {what}: {got}")
    if got != want:
        raise SystemExit(f"{fixture}: the reference loop gives {got}, {what} gives {want}")


def record(work: Path, genai_python: str) -> dict[str, Any]:
    """Make every fixture, then compare tokens and collect the manifest."""
    hf = make_hf_models(work)
    export_optimum(hf["gpt2"], OUT / "gpt2", work)
    export_optimum(hf["llama"], OUT / "llama", work)
    export_merged(hf["gpt2"], OUT / "gpt2" / "model.onnx", OUT / "gpt2_merged", work)
    make_legacy(OUT / "gpt2" / "model.onnx", OUT / "gpt2_legacy")
    quantize_int8(OUT / "gpt2" / "model.onnx", OUT / "gpt2_int8")
    build_genai(hf["llama"], OUT / "genai_llama", work, genai_python)
    # Last: an export before the merged decoder's would rename its initializers (torch numbers
    # the names it makes across exports in one process), and the other files stay as they were.
    export_optimum(hf["gpt2_3layer"], OUT / "gpt2_3layer", work)
    reference = _reference()
    prompt = np.array(PROMPT, dtype=np.int64)
    fixtures: dict[str, Any] = {}
    torch_runs = {name: torch_greedy(hf[name]) for name in ("gpt2", "gpt2_3layer", "llama")}
    sources = {"gpt2": "gpt2", "gpt2_merged": "gpt2", "gpt2_legacy": "gpt2", "llama": "llama"}
    sources |= {"gpt2_3layer": "gpt2_3layer"}
    sources |= {"genai_llama": "llama", "gpt2_int8": None}
    for fixture, source in sources.items():
        tokens = reference.greedy_tokens(OUT / fixture, prompt, GEN_TOKENS).tolist()
        entry: dict[str, Any] = {"signature": signature(OUT / fixture / "model.onnx"), "reference": tokens}
        if source is not None:
            want, gap = torch_runs[source]
            check(fixture, tokens, want, f"PyTorch {source}")
            entry |= {"torch": want, "torch_min_logit_gap": round(gap, 4)}
        fixtures[fixture] = entry
    genai = fixtures["genai_llama"]
    genai["onnxruntime_genai"] = genai_greedy(OUT / "genai_llama", PROMPT)
    check("genai_llama", genai["reference"], genai["onnxruntime_genai"], "onnxruntime-genai's generator")
    shared = reference.greedy_tokens(
        OUT / "genai_llama", prompt, GEN_TOKENS, shared_buffer_length=len(PROMPT[0]) + GEN_TOKENS
    ).tolist()
    check("genai_llama (shared buffer)", shared, genai["onnxruntime_genai"], "onnxruntime-genai's generator")
    genai["reference_shared_buffer"] = shared
    return fixtures


def main() -> None:
    """Rewrite tests/data/decoders/ (except README.md) and its manifest.json."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        # The merged decoder's initializer names follow the string hash (with a random hash seed
        # one run in six renamed two of them): rerun this script with a fixed one.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--genai-python",
        default=sys.executable,
        help="the Python whose onnxruntime_genai.models.builder runs (it needs transformers 5)",
    )
    args = parser.parse_args()
    for child in OUT.glob("*"):
        if child.is_dir():
            shutil.rmtree(child)
    with tempfile.TemporaryDirectory() as work:
        fixtures = record(Path(work), args.genai_python)
    versions = {name: importlib.metadata.version(name) for name in PACKAGES}
    builder = [args.genai_python, "-c", "import transformers; print(transformers.__version__)"]
    versions["transformers (genai builder)"] = subprocess.run(
        builder, check=True, capture_output=True, text=True
    ).stdout.strip()
    manifest = {"prompt": PROMPT, "gen_tokens": GEN_TOKENS, "versions": versions, "fixtures": fixtures}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.stat().st_size:>9}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
