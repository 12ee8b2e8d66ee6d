"""ONNX export (encoder + one cached decoder step) and an onnxruntime recognizer with a NumPy greedy loop.

Files written by `export_onnx(checkpoint, out_dir)`:

* ``encoder.onnx``: images (B, C, H, W) -> mem_kv (L, 2, B, heads, S, Dh), the cross-attention keys/values of
  every decoder layer, stacked (dynamic batch).
* ``decoder_step.onnx``: token (B, 1) int64, step () int64 (the position, a graph input, not a constant),
  past (L, 2, B, heads, T, Dh) with dynamic T (T = 0 at the first step), mem_kv -> logits (B, V) and
  present (L, 2, B, heads, T + 1, Dh).
* ``model.json``: {"model_config": MasterConfig.to_dict(), "charset": {"keys", "case_sensitive"}, ...}.
"""

from __future__ import annotations

import copy
import json
import math
import types
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from masterocr.charset import EOS, PAD, SOS, Charset
from masterocr.errors import UserError
from masterocr.formats.load import load_model
from masterocr.formats.onnx_layout import DECODER_FILE, ENCODER_FILE, META_FILE, default_onnx_path
from masterocr.model import MASTER, MasterConfig

OPSET = 17
# below this many images a decoder step runs on one thread (see OnnxRecognizer)
SMALL_BATCH = 32


def _gca_forward_static(self, x: torch.Tensor) -> torch.Tensor:
    """MultiAspectGCA.forward with the layer-norm shape as Python ints: the traced `out.shape[1:]` would be
    a graph value, which the TorchScript exporter rejects for LayerNorm's normalized_shape. C, H, W are fixed
    by the config, so constants are exact."""
    term = self.transform(self.context(x))
    if self.fusion == "channel_add":
        return x + term
    if self.fusion == "channel_mul":
        return x * torch.sigmoid(term)
    out = self.concat_conv(x, term)
    return F.relu(F.layer_norm(out, [int(s) for s in out.shape[1:]]))


def exportable(model: MASTER) -> MASTER:
    """A float32 CPU eval copy of the model whose GCA blocks trace with static layer-norm shapes."""
    from masterocr.model.backbone import MultiAspectGCA

    model = copy.deepcopy(model).float().cpu().eval()
    for m in model.modules():
        if isinstance(m, MultiAspectGCA):
            m.forward = types.MethodType(_gca_forward_static, m)
    # Keep only the positions the graphs can reach: the memory's length (fixed by the input size) and the
    # max_len + 1 decoding steps. The full 5,000-row tables were 3.8 MB of constants in each graph (d_model 192).
    model.memory_pos.pe = model.memory_pos.pe[: model.cfg.memory_len].clone()
    model.token_pos.pe = model.token_pos.pe[: model.cfg.max_len + 1].clone()
    return model


class EncoderExport(nn.Module):
    """images -> memory keys/values of every decoder layer, stacked (L, 2, B, H, S, Dh)."""

    def __init__(self, model: MASTER) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        kv = self.model.memory_kv(self.model.encode(images))
        return torch.stack([torch.stack(pair) for pair in kv])


class DecoderStepExport(nn.Module):
    """One cached greedy step; the position `step` is a tensor so that it stays a graph input."""

    def __init__(self, model: MASTER) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, token: torch.Tensor, step: torch.Tensor, past: torch.Tensor, mem_kv: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        pos = m.token_pos.pe.index_select(0, step.reshape(1).long())  # (1, D): a gather, not a baked slice
        x = m.embed(token) * math.sqrt(m.cfg.d_model) + pos  # dropout is the identity in eval
        present = []
        for i, layer in enumerate(m.decoder):
            x, (k, v), _ = layer(x, (mem_kv[i, 0], mem_kv[i, 1]), (past[i, 0], past[i, 1]))
            present.append(torch.stack([k, v]))
        logits = m.generator(m.decoder_norm(x[:, -1]))
        return logits, torch.stack(present)


def _export(module: nn.Module, args: tuple, path: Path, names_in, names_out, dynamic_axes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), input_names=names_in, output_names=names_out, dynamic_axes=dynamic_axes,
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )  # fmt: skip


def export_model(model: MASTER, charset: Charset, out_dir: str | Path, source: str | None = None) -> Path:
    """Export an in-memory model (eval, CPU, fp32) to out_dir; returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = exportable(model)
    cfg = model.cfg
    n_layers, heads, dh = len(model.decoder), cfg.nhead, cfg.d_model // cfg.nhead
    images = torch.zeros(2, cfg.in_channels, cfg.img_h, cfg.img_w)
    with torch.no_grad():
        enc = EncoderExport(model)
        mem_kv = enc(images)
        _export(enc, (images,), out / ENCODER_FILE, ["images"], ["mem_kv"],
                {"images": {0: "batch"}, "mem_kv": {2: "batch"}})  # fmt: skip
        past = torch.zeros(n_layers, 2, 2, heads, 3, dh)
        token = torch.full((2, 1), SOS, dtype=torch.long)
        step = torch.tensor(3, dtype=torch.long)
        _export(
            DecoderStepExport(model), (token, step, past, mem_kv), out / DECODER_FILE,
            ["token", "step", "past", "mem_kv"], ["logits", "present"],
            {"token": {0: "batch"}, "past": {2: "batch", 4: "steps"}, "mem_kv": {2: "batch"},
             "logits": {0: "batch"}, "present": {2: "batch", 4: "steps_plus_1"}},
        )  # fmt: skip
    meta = {
        "format": "masterocr-onnx",
        "opset": OPSET,
        "model_config": cfg.to_dict(),
        "charset": {"keys": charset.keys, "case_sensitive": charset.case_sensitive},
        "num_classes": model.num_classes,
        "source": source,
    }
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def export_onnx(checkpoint: str | Path | None, out_dir: str | Path) -> Path:
    """Load a checkpoint/weights file (None = shipped weights) and export it to out_dir."""
    model, charset, source = load_model(checkpoint)
    return export_model(model, charset, out_dir, str(source))


class OnnxRecognizer:
    """Recognizer on onnxruntime: same preprocessing, greedy decoding and error handling as `Recognizer`."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        folder = Path(folder)
        meta_path = folder / META_FILE
        if not folder.is_dir() or not meta_path.exists():
            raise UserError(f"{folder} is not an exported model folder (no {META_FILE}); run `masterocr export`")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.cfg: MasterConfig = MasterConfig.from_dict(meta["model_config"])
        cs = meta["charset"]
        self.charset = Charset(cs["keys"], case_sensitive=cs.get("case_sensitive", True))
        self.source = str(folder)

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
        self.device = torch.device("cpu")
        self.backend = "onnxruntime"
        self.supports_attention = False
        self.num_parameters = None  # the graphs hold folded constants too: no honest parameter count
        self.n_layers = self.cfg.num_decoder_layers
        self.heads = self.cfg.nhead
        self.head_dim = self.cfg.d_model // self.cfg.nhead

    @classmethod
    def from_path(cls, path: str | Path | None, threads: int | None = None) -> OnnxRecognizer:
        """An exported folder; None = the shipped model's int8 graphs (weights/master_medium_int8)."""
        return cls(default_onnx_path() if path is None else path, threads)

    def __call__(self, images, **kwargs):
        return self.predict(images, **kwargs)

    def preprocess(self, image) -> torch.Tensor:
        from masterocr.data.images import load_image
        from masterocr.data.transforms import preprocess

        c = self.cfg
        return preprocess(load_image(image), c.img_h, c.img_w, c.in_channels, c.keep_ratio)

    def decode_arrays(
        self, images: np.ndarray, max_len: int | None = None, suppress_eos: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy decoding of a preprocessed batch (B, C, H, W) float32 -> tokens (B, T), probs (B, T)."""
        max_len = self.cfg.max_len if max_len is None else max_len
        if max_len > self.cfg.max_len:  # the step graph holds positions for max_len + 1 steps only
            raise UserError(f"max_len {max_len} is more than the exported model's {self.cfg.max_len}")
        images = np.ascontiguousarray(images, dtype=np.float32)
        (mem_kv,) = self.encoder.run(None, {"images": images})
        b = images.shape[0]
        past = np.zeros((self.n_layers, 2, b, self.heads, 0, self.head_dim), dtype=np.float32)
        token = np.full((b, 1), SOS, dtype=np.int64)
        done = np.zeros(b, dtype=bool)
        tokens, probs = [], []
        decoder = self.decoder_small if b < SMALL_BATCH else self.decoder
        for step in range(max_len + 1):
            logits, past = decoder.run(
                None, {"token": token, "step": np.array(step, dtype=np.int64), "past": past, "mem_kv": mem_kv}
            )
            if suppress_eos:
                logits[:, EOS] = -np.inf
            nxt = logits.argmax(-1)
            z = logits - logits.max(-1, keepdims=True)
            p = 1.0 / np.exp(z).sum(-1)  # top softmax probability: exp(0) / sum
            nxt = np.where(done, PAD, nxt)
            tokens.append(nxt)
            probs.append(np.where(done, 0.0, p).astype(np.float32))
            done = done | (nxt == EOS)
            token = nxt[:, None].astype(np.int64)
            if done.all():
                break
        return np.stack(tokens, 1), np.stack(probs, 1)

    def predict_tensors(self, batch: torch.Tensor | np.ndarray, return_attention: bool = False) -> list:
        """Decode a preprocessed batch (B, C, H, W). The graphs output no attention: `attention` stays None."""
        from masterocr.infer.recognizer import tokens_to_prediction

        arr = batch.numpy() if isinstance(batch, torch.Tensor) else batch
        tokens, probs = self.decode_arrays(arr)
        return [tokens_to_prediction(self.charset, t, p) for t, p in zip(tokens.tolist(), probs.tolist())]

    def predict(self, images: Iterable | object, batch_size: int = 32, return_attention: bool = False) -> list:
        """Recognize each image; an unreadable one gets a Prediction with `error` set and the rest go on."""
        from masterocr.infer.recognizer import predict_batched

        if return_attention:
            raise UserError("the ONNX backend does not return attention maps; use the torch backend")
        return predict_batched(self.preprocess, self.predict_tensors, images, batch_size)
