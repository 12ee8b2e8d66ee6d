"""The onnxruntime backend: `OnnxRecognizer` runs an exported folder (encoder + one cached decoder step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from masterocr.charset import EOS, PAD, SOS
from masterocr.errors import UserError
from masterocr.formats.onnx_layout import (
    DECODER_FILE,
    ENCODER_FILE,
    check_graphs,
    config_and_charset,
    default_onnx_path,
    read_meta,
)
from masterocr.imports import require
from masterocr.model.backbone import STRIDE, Backbone
from masterocr.model.master import step_bound
from masterocr.runtime.base import BaseRecognizer, Decoded

# below this many images a decoder step runs on one thread (see OnnxRecognizer)
SMALL_BATCH = 32


class OnnxRecognizer(BaseRecognizer):
    """Recognizer on onnxruntime: same preprocessing, greedy decoding and error handling as `Recognizer`; the
    graphs output no attention maps."""

    backend = "onnxruntime"
    supports_attention = False

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        ort = require("onnxruntime", "ONNX inference (--backend onnx)")
        folder = Path(folder)
        meta = read_meta(folder)
        cfg, charset = config_and_charset(meta)
        variant = "onnx-int8" if meta.get("quantized") else "onnx"
        super().__init__(cfg, charset, torch.device("cpu"), folder, variant)

        def session(name: str, intra_op_threads: int | None):
            opts = ort.SessionOptions()
            if intra_op_threads:
                opts.intra_op_num_threads = intra_op_threads
            opts.log_severity_level = 3
            return ort.InferenceSession(str(folder / name), opts, providers=["CPUExecutionProvider"])

        try:
            self.encoder = session(ENCODER_FILE, threads)
            self.decoder = session(DECODER_FILE, threads)
            # A decoder step on a few images is some 40 operators of microseconds each: sharing them between
            # threads costs more than it gains (bench/onnx_threads.py: one crop at a time ran twice as fast on
            # one thread on a 2-core CPU; at 32 images the two were level), so small batches get their own session.
            self.decoder_small = self.decoder if threads == 1 else session(DECODER_FILE, 1)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise UserError(f"cannot load the ONNX model in {folder}: {exc}") from exc
        check_graphs(meta, folder, self.encoder, self.decoder)  # model.json against the graphs' shapes
        self.n_layers = cfg.num_decoder_layers
        self.heads = cfg.nhead
        self.head_dim = cfg.d_model // cfg.nhead
        # num_parameters stays None: the graphs hold folded constants too, no honest parameter count

    @classmethod
    def from_path(cls, path: str | Path | None, threads: int | None = None) -> OnnxRecognizer:
        """An exported folder; None = the shipped model's int8 graphs (weights/master_medium_int8)."""
        return cls(default_onnx_path() if path is None else path, threads)

    def decode_arrays(
        self,
        images: np.ndarray,
        max_len: int | None = None,
        suppress_eos: bool = False,
        widths: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy decoding of a preprocessed batch (B, C, H, W) float32 -> tokens (B, T), probs (B, T).

        The loop runs in NumPy on the graphs' outputs: this backend's step is the exported decoder_step graph,
        and its top probability is computed as exp(0) / sum(exp(logits - max)) on float32 arrays."""
        max_len = self.cfg.max_len if max_len is None else max_len
        if max_len > self.cfg.max_len:  # the step graph holds positions for max_len + 1 steps only
            raise UserError(f"max_len {max_len} is more than the exported model's {self.cfg.max_len}")
        images = np.ascontiguousarray(images, dtype=np.float32)
        b = images.shape[0]
        feeds: dict[str, np.ndarray] = {}
        if self.cfg.variable_width:  # the encoder also yields the memory mask of a padded batch of lines
            widths = np.full(b, images.shape[-1]) if widths is None else np.asarray(widths)
            mem_kv, feeds["mem_mask"] = self.encoder.run(None, {"images": images, "widths": widths.astype(np.int64)})
            cols = Backbone.output_widths(torch.as_tensor(widths, dtype=torch.long))
        else:
            (mem_kv,) = self.encoder.run(None, {"images": images})
            cols = torch.full((b,), images.shape[-1] // STRIDE, dtype=torch.long)
        limits = step_bound(cols, self.cfg.img_h, max_len, self.cfg.keep_ratio).numpy() + 1  # as MASTER.decode
        past = np.zeros((self.n_layers, 2, b, self.heads, 0, self.head_dim), dtype=np.float32)
        token = np.full((b, 1), SOS, dtype=np.int64)
        done = np.zeros(b, dtype=bool)
        tokens, probs = [], []
        decoder = self.decoder_small if b < SMALL_BATCH else self.decoder
        for step in range(int(limits.max())):
            logits, past = decoder.run(
                None,
                {"token": token, "step": np.array(step, dtype=np.int64), "past": past, "mem_kv": mem_kv, **feeds},
            )
            if suppress_eos:
                logits[:, EOS] = -np.inf
            nxt = logits.argmax(-1)
            z = logits - logits.max(-1, keepdims=True)
            p = 1.0 / np.exp(z).sum(-1)  # top softmax probability: exp(0) / sum
            nxt = np.where(done, PAD, nxt)
            tokens.append(nxt)
            probs.append(np.where(done, 0.0, p).astype(np.float32))
            done = done | (nxt == EOS) | (limits <= step + 1)
            token = nxt[:, None].astype(np.int64)
            if done.all():
                break
        return np.stack(tokens, 1), np.stack(probs, 1)

    def decode_batch(
        self, images: torch.Tensor | np.ndarray, return_attention: bool = False, widths: torch.Tensor | None = None
    ) -> Decoded:
        """Greedy decoding through the exported graphs; never attention (the graphs do not output it)."""
        arr = images.numpy() if isinstance(images, torch.Tensor) else images
        tokens, probs = self.decode_arrays(arr, widths=None if widths is None else np.asarray(widths))
        return Decoded(tokens.tolist(), probs.tolist())
