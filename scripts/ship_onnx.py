"""Export the shipped weights to the int8 ONNX graphs shipped beside them (weights/master_medium_int8/).

    python scripts/ship_onnx.py [--model word|line]

`masterocr predict` and `test` read these graphs when no --checkpoint is given and onnxruntime is installed
(`--backend auto`, their default), and so does `--backend onnx` for predict, test and serve. The export is
`masterocr export --int8` (calibrated on 128 seeded synthetic words, so the same weights give byte-identical
graphs); model.json then names its source by file name and SHA-256 instead of a local path, and
tests/test_shipped_model.py checks that the hash still matches the shipped weights. Run it again whenever
weights/master_medium.safetensors changes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from masterocr.assets import DEFAULT_MODEL, SHIPPED_MODELS, shipped_model, shipped_onnx
from masterocr.export.quantize import export_onnx_int8
from masterocr.formats.onnx_layout import META_FILE
from masterocr.formats.weights import file_sha256


def ship(weights: Path, out: Path) -> Path:
    """Export `weights` to int8 graphs in `out`, replacing what is there only once the export has succeeded."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = export_onnx_int8(weights, Path(tmp) / out.name)
        meta_path = staged / META_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["source"] = weights.name
        meta["source_sha256"] = file_sha256(weights)
        meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(SHIPPED_MODELS), default=DEFAULT_MODEL)
    args = parser.parse_args()
    out = ship(shipped_model(args.model), shipped_onnx(args.model))
    size = sum(f.stat().st_size for f in out.iterdir())
    print(json.dumps({"out": str(out), "bytes": size}))


if __name__ == "__main__":
    main()
