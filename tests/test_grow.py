"""Growing a trained model deeper: the grown model computes what the source did, and its new layers learn."""

from pathlib import Path

import pytest
import torch
from conftest import load_script

from masterocr import Recognizer
from masterocr.charset import Charset
from masterocr.model import build_model, get_preset
from masterocr.model.grow import grow_state_dict

REPO = Path(__file__).resolve().parents[1]
REPO_WEIGHTS = REPO / "weights"
CHARSET = Charset.default()
SRC = get_preset("tiny", dropout=0.0)
DST = get_preset("tiny", dropout=0.0, blocks=(1, 2, 1, 3), num_decoder_layers=4)


def _trained_like_source() -> torch.nn.Module:
    """A tiny model whose BatchNorms hold non-trivial statistics, as a trained one's do."""
    torch.manual_seed(0)
    model = build_model(SRC, CHARSET)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _grown(source: torch.nn.Module) -> torch.nn.Module:
    model = build_model(DST, CHARSET)
    rng = torch.random.get_rng_state()
    model.load_state_dict(grow_state_dict(source.state_dict(), SRC, DST, len(CHARSET), seed=3))
    assert torch.equal(torch.random.get_rng_state(), rng)  # the caller's random stream is untouched
    return model.eval()


def test_the_grown_model_gives_the_sources_logits_and_tokens():
    source = _trained_like_source()
    grown = _grown(source)
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in source.parameters())
    x = torch.randn(3, 1, SRC.img_h, SRC.img_w)
    targets = CHARSET.encode_batch(["ab", "hello", "X9"], 6)
    with torch.no_grad():
        torch.testing.assert_close(grown(x, targets), source(x, targets), rtol=1e-5, atol=1e-5)
        assert torch.equal(grown.decode(x, max_len=10).tokens, source.decode(x, max_len=10).tokens)
    # training mode too (BatchNorm on batch statistics, no dropout in these configs)
    torch.testing.assert_close(grown.train()(x, targets), source.train()(x, targets), rtol=1e-5, atol=1e-5)


def test_the_new_layers_get_gradients_from_the_first_step():
    grown = _grown(_trained_like_source()).train()
    x = torch.randn(2, 1, SRC.img_h, SRC.img_w)
    targets = CHARSET.encode_batch(["ab", "hello"], 6)
    logits = grown(x, targets)
    torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1)).backward()
    params = dict(grown.named_parameters())
    # stage 2 gained its block 2, stage 4 its blocks 2 and 3; the decoder its layers 2 and 3
    new = (
        "backbone.stages.1.2.bn2.weight",
        "backbone.stages.3.3.bn2.weight",
        "decoder.2.ffn.3.weight",
        "decoder.3.self_attn.out_proj.weight",
        "decoder.3.cross_attn.out_proj.weight",
    )
    for name in new:
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("dst", "message"),
    [
        (get_preset("tiny", dropout=0.0, nhead=2), "nhead differs"),
        (get_preset("tiny", dropout=0.0, blocks=(1, 1, 1, 0)), "at least as many"),
        (get_preset("tiny", dropout=0.0, num_decoder_layers=1), "at least as many"),
    ],
)
def test_growing_refuses_what_cannot_carry_the_weights(dst, message):
    with pytest.raises(ValueError, match=message):
        grow_state_dict(_trained_like_source().state_dict(), SRC, dst, len(CHARSET))


def test_the_script_grows_the_shipped_model_into_the_large_preset_that_reads_the_same(tmp_path):
    grow_file = load_script("grow_weights").grow_file
    out = tmp_path / "large_init.safetensors"
    assert grow_file(REPO_WEIGHTS / "master_medium.safetensors", "large", out) == get_preset("large")
    grown, shipped = Recognizer.from_checkpoint(out), Recognizer()
    assert grown.num_parameters > shipped.num_parameters
    samples = sorted((REPO / "samples").glob("*.[jp][pn]g"))
    assert len(samples) >= 4
    assert [p.text for p in grown.predict(samples)] == [p.text for p in shipped.predict(samples)]
