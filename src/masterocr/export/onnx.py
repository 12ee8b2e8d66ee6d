"""ONNX export: the encoder and one cached decoder step, as two graphs (layout: formats.onnx_layout).

The graphs are traced from the export-safe form of the model (`MASTER(..., exportable=True)`), built with
the same parameters; onnxruntime reads them through `masterocr.runtime.onnx.OnnxRecognizer`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from masterocr.charset import SOS, Charset
from masterocr.formats.load import load_model
from masterocr.formats.onnx_layout import CTC_OUTPUT, DECODER_FILE, ENCODER_FILE, export_meta, write_meta
from masterocr.imports import check_installed
from masterocr.model import MASTER
from masterocr.model.decoding import GrowingCache

OPSET = 17


def export_safe(model: MASTER) -> MASTER:
    """The export-safe form of `model` (float32, CPU, eval) holding the same parameters."""
    with torch.random.fork_rng(devices=[]):  # its random init is overwritten: leave the caller's RNG alone
        out = MASTER(model.cfg, model.num_classes, exportable=True)
    out.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    return out.eval()


class EncoderExport(nn.Module):
    """images -> memory keys/values of every decoder layer, stacked (L, 2, B, H, S, Dh); a model with the CTC
    branch also gives its frame logits (B, F, V) (see `export_model`)."""

    def __init__(self, model: MASTER) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        memory = self.model.encode(images)
        kv = _stacked(self.model.memory_kv(memory))
        return kv if self.model.ctc is None else (kv, self.model.ctc_logits(memory))


class LineEncoderExport(nn.Module):
    """A variable-width model's encoder: images (B, C, H, W dynamic) and their valid widths (B,) -> mem_kv
    and the memory mask (B, 1, 1, S) bool that the decoder step takes; and the CTC frame logits."""

    def __init__(self, model: MASTER) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.model
        memory = m.encode(images, widths)
        out = (_stacked(m.memory_kv(memory)), m.memory_mask(images, widths, always=True))
        return out if m.ctc is None else (*out, m.ctc_logits(memory))


def _stacked(kv: list) -> torch.Tensor:
    return torch.stack([torch.stack(pair) for pair in kv])


class DecoderStepExport(nn.Module):
    """The ONNX decoder step: `MASTER.decoder_step` over a growing cache that is a graph input (`past`) and
    output (`present`), and the position `step` a tensor so that it stays a graph input."""

    def __init__(self, model: MASTER) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        token: torch.Tensor,
        step: torch.Tensor,
        past: torch.Tensor,
        mem_kv: torch.Tensor,
        mem_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        pos = m.token_pos.pe.index_select(0, step.reshape(1).long())  # (1, D): a gather, not a baked slice
        cache = GrowingCache([(past[i, 0], past[i, 1]) for i in range(past.size(0))])
        kv = [(mem_kv[i, 0], mem_kv[i, 1]) for i in range(mem_kv.size(0))]
        logits, _ = m.decoder_step(token, pos, kv, cache, mem_mask)
        return logits, _stacked(cache.present)


def _export(module: nn.Module, args: tuple, path: Path, names_in, names_out, dynamic_axes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), input_names=names_in, output_names=names_out, dynamic_axes=dynamic_axes,
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )  # fmt: skip


def export_model(model: MASTER, charset: Charset, out_dir: str | Path, source: str | None = None) -> Path:
    """Export an in-memory model to out_dir (encoder, decoder step, model.json); returns out_dir."""
    check_installed("making ONNX graphs (masterocr export)", "onnx", extra="export")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = export_safe(model)
    cfg = model.cfg
    n_layers, heads, dh = len(model.decoder), cfg.nhead, cfg.d_model // cfg.nhead
    if cfg.variable_width:
        _export_lines(model, out)
        write_meta(out, export_meta(cfg, charset, model.num_classes, OPSET, source))
        return out
    images = torch.zeros(2, cfg.in_channels, cfg.img_h, cfg.img_w)
    with torch.no_grad():
        enc = EncoderExport(model)
        mem_kv = enc(images)
        outputs, axes = ["mem_kv"], {"images": {0: "batch"}, "mem_kv": {2: "batch"}}
        if model.ctc is not None:
            mem_kv = mem_kv[0]
            outputs.append(CTC_OUTPUT)
            axes[CTC_OUTPUT] = {0: "batch"}
        _export(enc, (images,), out / ENCODER_FILE, ["images"], outputs, axes)
        past = torch.zeros(n_layers, 2, 2, heads, 3, dh)
        token = torch.full((2, 1), SOS, dtype=torch.long)
        step = torch.tensor(3, dtype=torch.long)
        _export(
            DecoderStepExport(model), (token, step, past, mem_kv), out / DECODER_FILE,
            ["token", "step", "past", "mem_kv"], ["logits", "present"],
            {"token": {0: "batch"}, "past": {2: "batch", 4: "steps"}, "mem_kv": {2: "batch"},
             "logits": {0: "batch"}, "present": {2: "batch", 4: "steps_plus_1"}},
        )  # fmt: skip
    write_meta(out, export_meta(cfg, charset, model.num_classes, OPSET, source))
    return out


def _export_lines(model: MASTER, out: Path) -> None:
    """The graphs of a variable-width model: the encoder takes images of any width up to img_w (a multiple of
    4) with their valid widths and also returns the memory mask; the decoder step takes that mask."""
    cfg = model.cfg
    n_layers, heads, dh = len(model.decoder), cfg.nhead, cfg.d_model // cfg.nhead
    images = torch.zeros(2, cfg.in_channels, cfg.img_h, 64)
    widths = torch.tensor([64, 40])
    with torch.no_grad():
        enc = LineEncoderExport(model)
        mem_kv, mask = enc(images, widths)[:2]
        outputs = ["mem_kv", "mem_mask"]
        axes = {"images": {0: "batch", 3: "width"}, "widths": {0: "batch"},
                "mem_kv": {2: "batch", 4: "memory"}, "mem_mask": {0: "batch", 3: "memory"}}
        if model.ctc is not None:
            outputs.append(CTC_OUTPUT)
            axes[CTC_OUTPUT] = {0: "batch", 1: "frames"}
        _export(enc, (images, widths), out / ENCODER_FILE, ["images", "widths"], outputs, axes)
        past = torch.zeros(n_layers, 2, 2, heads, 3, dh)
        token = torch.full((2, 1), SOS, dtype=torch.long)
        step = torch.tensor(3, dtype=torch.long)
        _export(
            DecoderStepExport(model), (token, step, past, mem_kv, mask), out / DECODER_FILE,
            ["token", "step", "past", "mem_kv", "mem_mask"], ["logits", "present"],
            {"token": {0: "batch"}, "past": {2: "batch", 4: "steps"}, "mem_kv": {2: "batch", 4: "memory"},
             "mem_mask": {0: "batch", 3: "memory"}, "logits": {0: "batch"},
             "present": {2: "batch", 4: "steps_plus_1"}},
        )  # fmt: skip


def export_onnx(checkpoint: str | Path | None, out_dir: str | Path) -> Path:
    """Load a checkpoint/weights file (None = shipped weights) and export it to out_dir."""
    model, charset, source = load_model(checkpoint)
    return export_model(model, charset, out_dir, str(source))
