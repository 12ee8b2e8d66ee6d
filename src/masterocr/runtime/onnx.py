"""The onnxruntime backend: `OnnxRecognizer` runs an exported folder (encoder + one cached decoder step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from masterocr.errors import UserError
from masterocr.formats.onnx_layout import (
    CTC_OUTPUT,
    DECODER_FILE,
    ENCODER_FILE,
    check_graphs,
    config_and_charset,
    default_onnx_path,
    read_meta,
)
from masterocr.imports import require
from masterocr.limits import threads as cpu_threads
from masterocr.model.backbone import STRIDE, Backbone
from masterocr.model.decoding import DecodeOutput, decode_with
from masterocr.runtime.base import BaseRecognizer, Decoded, decoding_mode

# below this many images a decoder step runs on one thread (see OnnxRecognizer)
SMALL_BATCH = 32


class OnnxRecognizer(BaseRecognizer):
    """Recognizer on onnxruntime: same preprocessing, decoding modes and error handling as `Recognizer`; the
    graphs output no attention maps. `decode`, `window`: as `Recognizer`."""

    backend = "onnxruntime"
    supports_attention = False

    def __init__(
        self, folder: str | Path, threads: int | None = None, decode: str | None = None, window: int | None = None
    ) -> None:
        ort = require("onnxruntime", "ONNX inference (--backend onnx)")
        threads = cpu_threads(threads)  # built directly as well as through load_recognizer: the same bound
        folder = Path(folder)
        meta = read_meta(folder)
        cfg, charset = config_and_charset(meta)
        variant = "onnx-int8" if meta.get("quantized") else "onnx"
        super().__init__(cfg, charset, torch.device("cpu"), folder, variant, decode, window)

        def session(name: str, intra_op_threads: int):
            opts = ort.SessionOptions()
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
        self.has_ctc = CTC_OUTPUT in [o.name for o in self.encoder.get_outputs()]
        if self.decode != "attention" and not self.has_ctc:
            raise UserError(f"--decode {self.decode}: the graphs in {folder} have no CTC output ({CTC_OUTPUT}); "
                            "export the model again with `masterocr export`")
        self.n_layers = cfg.num_decoder_layers
        self.heads = cfg.nhead
        self.head_dim = cfg.d_model // cfg.nhead
        # num_parameters stays None: the graphs hold folded constants too, no honest parameter count

    @classmethod
    def from_path(
        cls, path: str | Path | None, threads: int | None = None, decode: str | None = None, window: int | None = None
    ) -> OnnxRecognizer:
        """An exported folder; None = the shipped model's int8 graphs (weights/master_medium_int8)."""
        return cls(default_onnx_path() if path is None else path, threads, decode, window)

    def decode_arrays(
        self,
        images: np.ndarray,
        max_len: int | None = None,
        suppress_eos: bool = False,
        widths: np.ndarray | None = None,
        mode: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`decode_output`'s tokens (B, T) int64 and probs (B, T) float32 as arrays."""
        out = self.decode_output(images, max_len, suppress_eos, widths, mode)
        return out.tokens.numpy(), out.probs.float().numpy()

    def decode_output(
        self,
        images: np.ndarray,
        max_len: int | None = None,
        suppress_eos: bool = False,
        widths: np.ndarray | None = None,
        mode: str | None = None,
    ) -> DecodeOutput:
        """Decoding of a preprocessed batch (B, C, H, W) float32 in `mode` (default: this recognizer's) ->
        DecodeOutput (tokens, probs, and the CTC spans in ctc mode).

        The rule is the PyTorch model's (model/decoding.py `decode_with`): the same bound, greedy or joint
        choice and CTC reading, on the graphs' outputs; ctc mode runs the encoder graph only, joint mode scores
        the decoder step's proposals with the CTC prefix scorer on the host."""
        mode = self.decode if mode is None else decoding_mode(self.cfg, mode, self.weights_path)
        max_len = self.cfg.max_len if max_len is None else max_len
        if max_len > self.cfg.max_len:  # the step graph holds positions for max_len + 1 steps only
            raise UserError(f"max_len {max_len} is more than the exported model's {self.cfg.max_len}")
        images = np.ascontiguousarray(images, dtype=np.float32)
        b = images.shape[0]
        feeds: dict[str, np.ndarray] = {}
        if self.cfg.variable_width:  # the encoder also yields the memory mask of a padded batch of lines
            widths = np.full(b, images.shape[-1]) if widths is None else np.asarray(widths)
            outs = self.encoder.run(None, {"images": images, "widths": widths.astype(np.int64)})
            mem_kv, feeds["mem_mask"] = outs[:2]
            cols = Backbone.output_widths(torch.as_tensor(widths, dtype=torch.long))
        else:
            outs = self.encoder.run(None, {"images": images})
            mem_kv = outs[0]
            cols = torch.full((b,), images.shape[-1] // STRIDE, dtype=torch.long)
        decoder = self.decoder_small if b < SMALL_BATCH else self.decoder
        state = {"past": np.zeros((self.n_layers, 2, b, self.heads, 0, self.head_dim), dtype=np.float32)}

        def step_fn(last: torch.Tensor, step: int) -> torch.Tensor:
            logits, state["past"] = decoder.run(None, {
                "token": last.numpy()[:, None], "step": np.array(step, dtype=np.int64), "past": state["past"],
                "mem_kv": mem_kv, **feeds})  # fmt: skip
            return torch.from_numpy(logits)

        return decode_with(step_fn, cols, lambda: torch.from_numpy(outs[-1]), mode, self.cfg.img_h, max_len,
                           self.cfg.keep_ratio, suppress_eos)  # fmt: skip

    def decode_batch(
        self, images: torch.Tensor | np.ndarray, return_attention: bool = False, widths: torch.Tensor | None = None
    ) -> Decoded:
        """Decoding through the exported graphs in this recognizer's mode; never attention (the graphs do not
        output it)."""
        arr = images.numpy() if isinstance(images, torch.Tensor) else images
        out = self.decode_output(arr, widths=None if widths is None else np.asarray(widths))
        spans = None if out.spans is None else out.spans.tolist()
        return Decoded(out.tokens.tolist(), out.probs.tolist(), None, spans)
