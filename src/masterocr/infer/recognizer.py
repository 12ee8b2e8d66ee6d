"""Recognizer: load a model, preprocess images, decode in batches, return text with scores."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from masterocr.charset import EOS, NUM_SPECIAL, UNK, Charset
from masterocr.errors import UserError
from masterocr.formats.load import load_model
from masterocr.model import MASTER, MasterConfig

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# suffixes of the files people keep beside their crops (labels, notes): a folder prediction skips them
NOT_IMAGES = frozenset({".txt", ".json", ".jsonl", ".csv", ".tsv", ".md", ".yaml", ".yml", ".mdb", ".lock", ".log"})


@dataclass
class Prediction:
    text: str | None
    score: float | None
    char_scores: list[float] = field(default_factory=list)
    error: str | None = None
    attention: list[list[float]] | None = None  # per character, weights over the (H/8)x(W/4) memory

    def to_json(self, filename: str) -> dict:
        """The original's predict_result.json entry, plus an error when the image could not be read."""
        entry = {"filename": filename, "result": self.text, "pred_score": self.score}
        if self.error is not None:
            entry["error"] = self.error
        return entry


def tokens_to_prediction(charset: Charset, tokens: list[int], probs: list[float]) -> Prediction:
    """Text and scores of one decoded row. Score: mean top probability up to and including EOS, UNK steps
    skipped (the original's definition); char_scores: one per emitted character."""
    text, char_scores, kept = [], [], []
    for tok, p in zip(tokens, probs):
        if tok == UNK:
            continue
        kept.append(p)
        if tok == EOS:
            break
        if tok >= NUM_SPECIAL:
            text.append(charset.keys[tok - NUM_SPECIAL])
            char_scores.append(round(float(p), 6))
    score = float(sum(kept) / len(kept)) if kept else 0.0
    return Prediction("".join(text), round(score, 6), char_scores)


def predict_batched(preprocess, predict_tensors, images, batch_size: int) -> list[Prediction]:
    """Preprocess each image, decode the readable ones in batches, keep input order; an unreadable image gets a
    Prediction with `error` set. Shared by the torch and ONNX backends."""
    from masterocr.data.images import ImageError

    single = not isinstance(images, Sequence) or isinstance(images, (str, bytes, os.PathLike))
    items = [images] if single else list(images)
    results: list[Prediction | None] = [None] * len(items)
    tensors, index = [], []
    for i, item in enumerate(items):
        try:
            tensors.append(preprocess(item))
            index.append(i)
        except (ImageError, UserError) as exc:
            results[i] = Prediction(None, None, error=str(exc))
    for start in range(0, len(tensors), batch_size):
        batch = torch.stack(tensors[start : start + batch_size])
        for j, pred in zip(index[start : start + batch_size], predict_tensors(batch)):
            results[j] = pred
    return results[:1] if single else results  # type: ignore[return-value]


class Recognizer:
    """Reads text from word crops. `predict` takes paths, bytes, PIL images or arrays."""

    def __init__(
        self,
        model: MASTER | None = None,
        charset: Charset | None = None,
        device: str | torch.device = "cpu",
        dtype: str = "fp32",
    ) -> None:
        """`Recognizer()` loads the shipped weights; or give a model and its charset.

        `dtype`: "fp32", "bf16" (GPUs; on a CPU without AMX it is slower than fp32) or "fp16" (GPUs only).
        """
        self.source: str | None = None
        if model is None:
            model, charset, source = load_model()
            self.source = str(source)
        self.device = torch.device(device)
        if dtype not in DTYPES:
            raise UserError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        if dtype == "fp16" and self.device.type == "cpu":
            raise UserError("fp16 inference needs a GPU; use bf16 or fp32 on the CPU")
        self.dtype = DTYPES[dtype]
        self.model = model.to(self.device, self.dtype).eval()
        self.backend = "torch"
        self.supports_attention = True
        self.num_parameters = sum(p.numel() for p in self.model.parameters())
        self.charset = charset or Charset.default()
        self.cfg: MasterConfig = model.cfg

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | None = None, device: str | torch.device = "cpu", int8: bool = False, dtype: str = "fp32"
    ) -> Recognizer:
        """Load a training checkpoint (.pth, weights_only) or shipped weights (.safetensors); None = shipped.

        `int8=True` (CPU only) folds conv+BN and quantizes the decoder's Linear layers to dynamic int8;
        `bench/accuracy.py` measures what that costs in accuracy.
        """
        if int8 and dtype != "fp32":
            raise UserError("int8 replaces the float dtype: pass int8 or a dtype, not both")
        if int8 and torch.device(device).type != "cpu":
            raise UserError("int8 inference runs on the CPU only; drop --int8 or use --device cpu")
        model, charset, source = load_model(path)
        if int8:
            from masterocr.infer.fast import optimize

            model = optimize(model, fold_bn=True, int8=True)
        rec = cls(model, charset, device, dtype)
        rec.source = str(source) + (" (int8)" if int8 else "" if dtype == "fp32" else f" ({dtype})")
        return rec

    def __call__(self, images, **kwargs) -> list[Prediction]:
        return self.predict(images, **kwargs)

    def preprocess(self, image) -> torch.Tensor:
        from masterocr.data.images import load_image
        from masterocr.data.transforms import preprocess

        c = self.cfg
        return preprocess(load_image(image), c.img_h, c.img_w, c.in_channels, c.keep_ratio)

    @torch.inference_mode()
    def predict_tensors(self, batch: torch.Tensor, return_attention: bool = False) -> list[Prediction]:
        """Decode a preprocessed batch (B, C, H, W)."""
        out = self.model.decode(batch.to(self.device, self.dtype), return_attention=return_attention)
        preds = [
            tokens_to_prediction(self.charset, t, p) for t, p in zip(out.tokens.tolist(), out.probs.tolist())
        ]
        if return_attention and out.attention is not None:
            for i, pred in enumerate(preds):
                pred.attention = out.attention[i, : len(pred.text)].float().cpu().tolist()
        return preds

    def predict(
        self, images: Iterable | object, batch_size: int = 32, return_attention: bool = False
    ) -> list[Prediction]:
        """Recognize each image; an unreadable one gets a Prediction with `error` set and the rest go on."""
        return predict_batched(self.preprocess, lambda b: self.predict_tensors(b, return_attention), images, batch_size)


def predict_folder(
    recognizer: Recognizer, folder: str | Path, output_folder: str | Path, batch_size: int = 32, progress: bool = True
) -> tuple[Path, list[dict]]:
    """Recognize every file in `folder` and write output_folder/predict_result.json (the original's format).

    Label and document files kept beside the images (NOT_IMAGES: .txt, .jsonl, .md, ...) are skipped with a
    warning; every other file gets an entry, with the reason when it cannot be read."""
    from tqdm import tqdm

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist or is not a folder")
    files, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        (skipped if path.suffix.lower() in NOT_IMAGES else files).append(path)
    if skipped:
        names = ", ".join(p.name for p in skipped[:5])
        log.warning("skipped %d label/document files in %s: %s", len(skipped), folder, names)
    if not files:
        raise UserError(f"image folder {folder} holds no image files")
    entries = []
    for start in tqdm(range(0, len(files), batch_size), desc="predict", disable=not progress, leave=False):
        chunk = files[start : start + batch_size]
        for path, pred in zip(chunk, recognizer.predict(chunk, batch_size=batch_size)):
            entries.append(pred.to_json(path.name))
    out = Path(output_folder)
    out.mkdir(parents=True, exist_ok=True)
    result = out / "predict_result.json"
    tmp = result.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(entries, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(result)
    return result, entries


def resolve_backend(
    backend: str, checkpoint: str | Path | None, device: str | torch.device, int8: bool, dtype: str
) -> str:
    """ "auto" becomes "onnx" where the shipped int8 ONNX graphs are the model asked for and can run: no checkpoint,
    no MASTEROCR_WEIGHTS, a CPU, fp32 and no --int8 (torch-only options), onnxruntime installed, the graphs present.
    Anything else is "torch". Other backends pass through.

    The graphs read the shipped model 2-3 times faster at batch 1 on a CPU, with the same exact-match accuracy on
    the benchmarks (weights/MODEL_CARD.md); they return no attention maps."""
    if backend != "auto":
        return backend
    if checkpoint is not None or torch.device(device).type != "cpu" or dtype != "fp32" or int8:
        return "torch"
    import importlib.util

    from masterocr.infer.export import default_onnx_path

    try:
        default_onnx_path()  # refuses under MASTEROCR_WEIGHTS (another model) and when the graphs are missing
    except UserError:
        return "torch"
    return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "torch"


def load_recognizer(
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    backend: str = "torch",
    int8: bool = False,
    dtype: str = "fp32",
    threads: int | None = None,
):
    """A Recognizer (backend "torch") or an OnnxRecognizer (backend "onnx": `checkpoint` is an exported folder,
    None the shipped int8 graphs); backend "auto" picks one as `resolve_backend` says.

    `threads`: CPU threads for inference (onnxruntime's intra-op threads; for the torch backend
    `torch.set_num_threads`, which is process-wide). None keeps each library's default (every core). The onnx
    backend runs the decoder steps of batches under 32 images on one thread whatever `threads` says: they are
    too small to share (bench/onnx_threads.py); for the torch backend one thread was not faster at batch 1.
    """
    if threads is not None and threads < 1:
        raise UserError(f"threads must be at least 1, got {threads}")
    backend = resolve_backend(backend, checkpoint, device, int8, dtype)
    if backend == "onnx":
        if int8 or dtype != "fp32":
            raise UserError(
                "--int8/--dtype apply to the torch backend; the ONNX graphs run as exported "
                "(`masterocr export --int8` makes int8 graphs)"
            )
        from masterocr.infer.export import OnnxRecognizer

        return OnnxRecognizer.from_path(checkpoint, threads)
    if backend != "torch":
        raise UserError(f"backend {backend!r} is not auto, torch or onnx")
    if threads is not None:
        torch.set_num_threads(threads)
    return Recognizer.from_checkpoint(checkpoint, device=device, int8=int8, dtype=dtype)
