"""The variable-width line model: padding masked, long cached decoding, the width-bounded number of steps."""

import math

import numpy as np
import pytest
import torch
from fixtures import randomize_bn

from masterocr.charset import EOS, SOS, Charset
from masterocr.model import build_model, get_preset
from masterocr.model.decoding import MIN_CHAR_WIDTH, STEPS_EXTRA, step_bound

CHARSET = Charset.default()
# the line preset's shape and options with tiny widths: fast enough to decode 150 steps on a CPU
LINE_TINY = get_preset(
    "line", widths=(8, 16, 32, 32, 64, 64), blocks=(1, 1, 1, 1), d_model=64, nhead=4, d_ff=256,
    num_decoder_layers=2, img_w=800, gca_headers=2,
)  # fmt: skip



def _model(cfg=LINE_TINY, seed=0):
    torch.manual_seed(seed)
    model = build_model(cfg, CHARSET).eval()
    randomize_bn(model)
    return model


def _pad(lines, width):
    """Right-pad (1, H, w) lines to `width` with noise: masking must make the padding's content irrelevant."""
    g = torch.Generator().manual_seed(7)
    out = torch.randn(len(lines), 1, lines[0].size(-2), width, generator=g) * 3
    for i, x in enumerate(lines):
        out[i, :, :, : x.size(-1)] = x
    return out, torch.tensor([x.size(-1) for x in lines])


def _alone(x):
    """One line padded (with zeros) only to the backbone's stride, as the recognizer batches it alone."""
    width = math.ceil(x.size(-1) / 4) * 4
    out = torch.zeros(1, 1, x.size(-2), width)
    out[..., : x.size(-1)] = x
    return out, torch.tensor([x.size(-1)])


@torch.inference_mode()
def test_a_lines_logits_and_text_are_the_same_alone_and_in_a_padded_batch_of_wider_lines():
    model = _model()
    g = torch.Generator().manual_seed(0)
    lines = [torch.randn(1, 32, w, generator=g) for w in (203, 517, 798)]
    batch, widths = _pad(lines, 800)
    targets = CHARSET.encode_batch(["a line of text", "another", "x"], 20)
    batch_logits = model(batch, targets, widths)
    batch_out = model.decode(batch, max_len=30, widths=widths)
    for i, line in enumerate(lines):
        x, w = _alone(line)
        alone = model(x, targets[i : i + 1], w)
        assert torch.allclose(alone[0], batch_logits[i], atol=1e-4), (i, (alone[0] - batch_logits[i]).abs().max())
        out = model.decode(x, max_len=30, widths=w)
        n = out.tokens.size(1)
        assert torch.equal(out.tokens[0], batch_out.tokens[i, :n])
        assert CHARSET.decode(out.tokens[0]) == CHARSET.decode(batch_out.tokens[i])
    assert model.memory_mask(*_alone(lines[0])) is None  # alone, every column is valid: no mask at all
    assert model.memory_mask(batch, widths).sum().item() == 4 * (51 + 130 + 200)
    # without the widths the padding's noise reaches the valid columns: the masking is what makes them equal
    unmasked = model(batch, targets)
    x, w = _alone(lines[0])
    assert not torch.allclose(model(x, targets[:1], w)[0], unmasked[0], atol=1e-2)


@torch.inference_mode()
def test_the_line_preset_itself_masks_padding():
    model = _model(get_preset("line", img_w=400))
    g = torch.Generator().manual_seed(1)
    lines = [torch.randn(1, 32, w, generator=g) for w in (90, 400)]
    batch, widths = _pad(lines, 400)
    targets = CHARSET.encode_batch(["ab", "cd"], 4)
    x, w = _alone(lines[0])
    assert torch.allclose(model(x, targets[:1], w)[0], model(batch, targets, widths)[0], atol=1e-4)


@torch.inference_mode()
def test_cached_decoding_matches_full_recompute_step_by_step_over_150_tokens():
    model = _model()
    assert model.cfg.max_len >= 160 and model.token_pos.pe.size(0) >= 161
    g = torch.Generator().manual_seed(2)
    lines = [torch.randn(1, 32, w, generator=g) for w in (800, 640)]
    batch, widths = _pad(lines, 800)
    with torch.no_grad():
        model.generator.bias[EOS] = -1e4  # never end: every row runs the full 150 steps
    out = model.decode(batch, max_len=150, widths=widths, suppress_eos=True)
    assert out.tokens.shape == (2, 151)
    ref = model.decode(batch, max_len=150, widths=widths, suppress_eos=True, use_cache=False)
    assert torch.equal(out.tokens, ref.tokens)
    # logits at every step: the cached fast path against a full recompute of the prefix
    memory = model.encode(batch, widths)
    mem_kv, mask = model.memory_kv(memory), model.memory_mask(batch, widths)
    shape = (2, model.cfg.nhead, 151, model.cfg.d_model // model.cfg.nhead)
    caches = [(torch.empty(shape), torch.empty(shape)) for _ in model.decoder]
    prefix = torch.cat([torch.full((2, 1), SOS), out.tokens], 1)
    worst = 0.0
    for step in range(151):
        cached = model._cached_step(prefix[:, step], mem_kv, caches, step, mask)
        full, _, _ = model.decode_step(prefix[:, : step + 1], mem_kv, None, 0, False, mask)
        # EOS sits at -1e4 (the bias above), where one fp32 ulp is ~1e-3: it gets a relative bound
        diff = (cached - full).abs()
        assert float(diff[:, EOS].max()) <= 4 * 2**-10, step  # four ulps at 1e4
        diff[:, EOS] = 0
        worst = max(worst, float(diff.max()))
    assert worst < 1e-4, worst
    teacher = model(batch, prefix, widths)  # the training path sees the same logits
    full, _, _ = model.decode_step(prefix[:, :151], mem_kv, None, 0, False, mask)
    assert torch.allclose(teacher[:, 150], full, atol=1e-4)


def test_step_bound_follows_the_width():
    cols = torch.tensor([1, 32, 100, 400])
    bound = step_bound(cols, 32, 200)
    per_column = 4 / (MIN_CHAR_WIDTH * 32)
    assert bound.tolist() == [min(200, math.ceil(c * per_column) + STEPS_EXTRA) for c in cols.tolist()]
    assert bound[-1] == 200  # a full 1,600 px line may hold max_len characters
    assert step_bound(torch.tensor([32]), 32, 25).item() == 25  # a 32x128 crop: max_len rules
    assert step_bound(torch.tensor([40]), 48, 100, keep_ratio=False).item() == 100  # squashed: no bound


@torch.inference_mode()
def test_plainly_resized_crops_are_not_bounded_by_their_width():
    """The paper's 48x160 crops squeeze any text into 160 px: a 100-character label must stay readable."""
    torch.manual_seed(0)
    model = _runaway(build_model(get_preset("tiny", img_h=48, img_w=160, max_len=100), CHARSET).eval())
    assert model.decode(torch.randn(1, 1, 48, 160)).tokens.size(1) == 101
    lines = _runaway(build_model(get_preset("tiny", img_h=48, img_w=160, max_len=100, keep_ratio=True), CHARSET))
    assert lines.eval().decode(torch.randn(1, 1, 48, 160)).tokens.size(1) == math.ceil(40 * 4 / 7.2) + 4 + 1


def _runaway(model):
    """`model` with an EOS that never wins: decoding can only stop at the bound."""
    with torch.no_grad():
        model.generator.bias[EOS] = -1e4
    return model


def _random_weights(seed):
    torch.manual_seed(seed)
    model = build_model(LINE_TINY, CHARSET).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


@pytest.mark.parametrize(
    "make",
    [lambda: build_model(LINE_TINY, CHARSET).eval(), lambda: _random_weights(3)],
    ids=["untrained", "random-weights"],
)
@torch.inference_mode()
def test_a_blank_or_noise_line_gets_a_short_answer_bounded_by_its_width(make):
    torch.manual_seed(0)
    model = _runaway(make())
    blank = torch.full((1, 1, 32, 96), 1.0)  # white, normalised
    noise = torch.rand(1, 1, 32, 200) * 2 - 1
    for x in (blank, noise):
        out = model.decode(x, widths=torch.tensor([x.size(-1)]))
        n_chars = len(CHARSET.decode(out.tokens[0])) + int((out.tokens[0] == 3).sum())
        limit = math.ceil(x.size(-1) / 4 * 4 / (MIN_CHAR_WIDTH * 32)) + STEPS_EXTRA
        assert out.tokens.size(1) == limit + 1 and n_chars <= limit + 1  # the bound plus the EOS slot
        assert limit < 50 and out.tokens.size(1) < model.cfg.max_len  # short: far below max_len's 200
    # in a batch each row keeps its own bound: the narrow blank stops before the wider noise line
    batch, widths = _pad([blank[0], noise[0]], 200)
    out = model.decode(batch, widths=widths)
    assert (out.tokens[0, step_bound(torch.tensor([24]), 32, 200).item() + 1 :] == 0).all()
    assert out.tokens.size(1) == step_bound(torch.tensor([50]), 32, 200).item() + 1


def _line_image(width, seed):
    """A grey RGB image with dark bars: something a line model can be fed at any width."""
    from PIL import Image, ImageDraw

    g = torch.Generator().manual_seed(seed)
    img = Image.new("RGB", (width, 40), "white")
    draw = ImageDraw.Draw(img)
    for x in range(4, width - 8, 9):
        h = int(torch.randint(8, 30, (1,), generator=g))
        draw.rectangle([x, 38 - h, x + 4, 38], fill="black")
    return img


@torch.inference_mode()
def test_the_recognizer_batches_lines_of_any_width_and_refuses_one_wider_than_the_maximum():
    from masterocr.errors import UserError
    from masterocr.runtime.torch import Recognizer

    rec = Recognizer(_runaway(_model()), CHARSET)
    images = [_line_image(w, i) for i, w in enumerate((250, 60, 900, 333))]
    together = rec.predict(images, batch_size=4)
    alone = [rec.predict(img)[0] for img in images]
    assert [p.text for p in together] == [p.text for p in alone]
    assert [len(p.text) for p in together] == [  # each line stops at its own width's bound
        int(step_bound(torch.tensor([math.ceil(round(w * 32 / 40) / 4)]), 32, 200)) + 1 for w in (250, 60, 900, 333)
    ]
    assert rec.preprocess(images[0]).shape == (1, 32, round(250 * 32 / 40))
    wide = _line_image(1100, 9)  # 880 px at height 32, over the 800 px maximum
    with pytest.raises(UserError, match="880 px wide at the model's height 32, over its maximum 800"):
        rec.preprocess(wide)
    out = rec.predict([images[0], wide])
    assert out[0].text == alone[0].text and out[1].text is None and "over its maximum" in out[1].error


@torch.inference_mode()
def test_onnx_export_reads_lines_of_two_widths_like_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from masterocr.export.onnx import export_model
    from masterocr.runtime.onnx import OnnxRecognizer

    model = _model()
    folder = export_model(model, CHARSET, tmp_path / "line")
    ort = OnnxRecognizer(folder, threads=1)
    g = torch.Generator().manual_seed(5)
    for width in (200, 800):
        lines = [torch.randn(1, 32, w, generator=g) for w in (width, width // 2 + 2)]
        batch, widths = _pad(lines, width)
        ref = model.decode(batch, max_len=40, widths=widths)
        tokens, probs = ort.decode_arrays(batch.numpy(), max_len=40, widths=widths.numpy())
        assert np.array_equal(tokens, ref.tokens.numpy()), width
        assert np.allclose(probs, ref.probs.numpy(), atol=1e-4)
        # the graphs' logits: the encoder's memory and mask, then one step, against torch's
        mem_kv, mask = ort.encoder.run(None, {"images": batch.numpy(), "widths": widths.numpy()})
        assert np.array_equal(mask, model.memory_mask(batch, widths, always=True).numpy())
        past = np.zeros((2, 2, 2, 4, 0, 16), dtype=np.float32)
        feeds = {"token": np.full((2, 1), SOS), "step": np.array(0), "past": past, "mem_kv": mem_kv, "mem_mask": mask}
        logits, _ = ort.decoder.run(None, feeds)
        torch_logits, _, _ = model.decode_step(
            torch.full((2, 1), SOS), model.memory_kv(model.encode(batch, widths)), None, 0, False,
            model.memory_mask(batch, widths),
        )  # fmt: skip
        assert np.allclose(logits, torch_logits.numpy(), atol=1e-4), np.abs(logits - torch_logits.numpy()).max()


@torch.inference_mode()
def test_int8_graphs_of_a_line_model_read_like_its_fp32_graphs(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)  # onnxruntime's shape inference leaves temporary files in the working folder
    from masterocr.export.onnx import export_model
    from masterocr.export.quantize import quantize_exported
    from masterocr.runtime.onnx import OnnxRecognizer

    model = _model()
    fp32 = export_model(model, CHARSET, tmp_path / "fp32")
    g = torch.Generator().manual_seed(4)
    calibration = (torch.rand(4, 1, 32, 400, generator=g) * 2 - 1).numpy()
    int8 = OnnxRecognizer(quantize_exported(fp32, tmp_path / "int8", calibration), threads=1)
    lines = [torch.rand(1, 32, w, generator=g) * 2 - 1 for w in (320, 150)]
    batch, widths = _pad(lines, 320)
    ref = OnnxRecognizer(fp32, threads=1)
    mem = [r.encoder.run(None, {"images": batch.numpy(), "widths": widths.numpy()}) for r in (ref, int8)]
    assert np.array_equal(mem[0][1], mem[1][1])  # the same memory mask
    kv32, kv8 = mem[0][0], mem[1][0]
    assert kv8.shape == kv32.shape and np.abs(kv8 - kv32).mean() < 0.1 * np.abs(kv32).mean()
    tokens, _ = int8.decode_arrays(batch.numpy(), max_len=20, widths=widths.numpy())
    assert tokens.shape[0] == 2 and tokens.shape[1] <= 21


@torch.inference_mode()
def test_lmdb_evaluation_of_a_line_model_reads_padded_batches_as_lines_alone(tmp_path):
    from masterocr.data.lmdb import lmdb_from_labels
    from masterocr.runtime.benchmark import evaluate_lmdb
    from masterocr.runtime.torch import Recognizer

    rec = Recognizer(_runaway(_model()), CHARSET)
    (tmp_path / "img").mkdir()
    lines = []
    for i, w in enumerate((120, 480, 260)):
        _line_image(w, i).save(tmp_path / "img" / f"{i}.png")
        text = rec.predict(tmp_path / "img" / f"{i}.png")[0].text  # what the model reads alone
        lines.append(f"{i}.png\t{text}")
    (tmp_path / "gt.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lmdb_from_labels(tmp_path / "gt.txt", tmp_path / "img", tmp_path / "db", split="\t")
    counts = evaluate_lmdb(rec, tmp_path / "db", batch_size=3)
    assert counts.n == 3 and counts.correct == 3, counts


def test_the_pad_free_loss_equals_the_full_loss_and_its_gradients():
    import torch.nn.functional as F

    from masterocr.charset import PAD

    model = _model().train()
    torch.manual_seed(3)
    batch, widths = _pad([torch.randn(1, 32, w) for w in (120, 64)], 120)
    targets = CHARSET.encode_batch(["a longer label", "ab"], 14)
    torch.manual_seed(4)  # the same dropout masks for both paths
    logits = model(batch, targets, widths)
    full = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1), ignore_index=PAD)
    full.backward()
    grad = model.generator.weight.grad.clone()
    model.zero_grad()
    torch.manual_seed(4)
    kept, gold = model.masked_logits(batch, targets, widths)
    assert kept.shape == (15 + 3, len(CHARSET))  # 14 + EOS and 2 + EOS positions, no padding
    masked = F.cross_entropy(kept, gold)
    masked.backward()
    assert torch.allclose(full, masked, atol=1e-6)
    assert torch.allclose(grad, model.generator.weight.grad, atol=1e-6)


def test_bench_charset_step_prints_a_row_per_charset_size(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "charset_step.py"
    spec = importlib.util.spec_from_file_location("charset_step", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--classes", "95", "500", "--width", "64", "--steps", "1", "--min-chars", "2", "--max-chars", "4"])
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 4 and rows[2].split()[0] == "95" and rows[3].split()[0] == "500"
    assert rows[2].endswith("1.00x")


def test_int8_calibration_of_a_line_model_draws_padded_lines():
    from masterocr.export.quantize import synthetic_calibration

    cfg = {"img_h": 32, "img_w": 400, "in_channels": 1, "max_len": 30, "variable_width": True, "keep_ratio": True}
    meta = {"model_config": cfg, "charset": {"keys": CHARSET.keys}}
    batch = synthetic_calibration(meta, count=3)
    assert batch.shape == (3, 1, 32, 400) and batch.dtype == np.float32
    # lines, not one short word: every image has ink beyond its first 128 px
    assert all((img[0, :, 128:] < img.max() - 0.5).any() for img in batch)
