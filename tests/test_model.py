"""Every preset: shapes, parameter counts, a backward step, cached vs full-recompute decoding parity."""

import pytest
import torch

from masterocr.charset import EOS, PAD, Charset
from masterocr.model import build_model, get_preset

CHARSET = Charset.default()


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_paper_preset_matches_the_originals_used_parameter_count():
    m = build_model("paper", CHARSET)
    assert abs(n_params(m) - 59.94e6) / 59.94e6 < 0.005
    assert abs(n_params(m.backbone) - 47.23e6) / 47.23e6 < 0.005
    gca = sum(p.numel() for n, p in m.backbone.named_parameters() if ".gca." in n)
    assert abs(gca - 1.26e6) / 1.26e6 < 0.01
    assert m.generator is list(m.modules())[-1]  # the vocabulary projection is the last Linear


def test_paper_preset_with_encoder_matches_the_originals_reported_count():
    m = build_model(get_preset("paper", with_encoder=True), CHARSET)
    assert abs(n_params(m) - 69.39e6) / 69.39e6 < 0.005


def test_gca_only_in_first_block_of_layers_2_to_4_by_default_and_everywhere_on_request():
    m = build_model("paper", CHARSET)
    with_gca = [n for n, mod in m.backbone.named_modules() if n.endswith(".gca") and mod is not None]
    assert len(with_gca) == 3
    m2 = build_model(get_preset("paper", gca_all_blocks=True), CHARSET)
    assert sum(1 for n, _ in m2.backbone.named_modules() if n.endswith(".gca")) == 2 + 5 + 3


@pytest.mark.parametrize("preset", ["small", "tiny"])
def test_preset_forward_shapes_and_backward(preset):
    torch.manual_seed(0)
    m = build_model(preset, CHARSET)
    c = m.cfg
    x = torch.randn(2, c.in_channels, c.img_h, c.img_w)
    assert m.encode(x).shape == (2, c.memory_len, c.d_model)
    targets = CHARSET.encode_batch(["ab", "hello"], 5)
    logits = m(x, targets)
    assert logits.shape == (2, 6, len(CHARSET))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1))
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("preset", ["small", "tiny"])
@pytest.mark.parametrize("batch", [1, 3])
def test_cached_decoding_gives_the_same_tokens_as_full_recompute(preset, batch):
    torch.manual_seed(1)
    m = build_model(preset, CHARSET).eval()
    c = m.cfg
    x = torch.randn(batch, c.in_channels, c.img_h, c.img_w)
    a = m.decode(x, max_len=12, use_cache=True)
    b = m.decode(x, max_len=12, use_cache=False)
    assert torch.equal(a.tokens, b.tokens)
    assert torch.allclose(a.probs, b.probs, atol=1e-5)


def test_decode_stops_early_when_every_sequence_has_ended_and_pads_after_eos():
    torch.manual_seed(0)
    m = build_model("tiny", CHARSET).eval()
    # force EOS: a generator that always prefers EOS for sample 0, and char 'a' otherwise
    with torch.no_grad():
        m.generator.weight.zero_()
        m.generator.bias.zero_()
        m.generator.bias[EOS] = 10.0
    x = torch.randn(2, 1, 32, 128)
    out = m.decode(x, max_len=20)
    assert out.tokens.shape == (2, 1)  # stopped after the first step
    assert (out.tokens == EOS).all()
    with torch.no_grad():
        m.generator.bias[EOS] = 0.0
        m.generator.bias[4] = 10.0
    out = m.decode(x, max_len=7)
    assert out.tokens.shape == (2, 8)  # max_len characters + the EOS slot
    out = m.decode(x, max_len=7, suppress_eos=True)
    assert not (out.tokens == EOS).any()
    assert PAD not in out.tokens.tolist()[0]


def test_eval_returns_the_module_and_batchnorm_uses_pytorch_default_momentum():
    m = build_model("tiny", CHARSET)
    assert m.eval() is m
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert bns and all(bn.momentum == 0.1 for bn in bns)


def test_no_encoder_is_built_unless_asked():
    assert build_model("tiny", CHARSET).encoder is None
    assert build_model(get_preset("tiny", with_encoder=True), CHARSET).encoder is not None


@pytest.mark.parametrize("fusion", ["channel_add", "channel_mul", "channel_concat"])
def test_gca_fusion_types_and_multiple_headers_keep_shapes(fusion):
    m = build_model(get_preset("tiny", gca_fusion=fusion, gca_headers=4), CHARSET)
    x = torch.randn(1, 1, 32, 128)
    assert m(x, CHARSET.encode_batch(["a"], 1)).shape == (1, 2, len(CHARSET))


def test_gca_concat_conv_equals_the_originals_concatenation_and_its_gradients():
    from masterocr.model.backbone import MultiAspectGCA

    torch.manual_seed(0)
    gca = MultiAspectGCA(32, 0.0625, 2, "channel_concat", True)
    x, term = torch.randn(3, 32, 4, 16), torch.randn(3, 32, 1, 1, requires_grad=True)
    ours = gca.concat_conv(x, term)
    (ours**2).sum().backward()
    grads = [p.grad.clone() for p in (gca.cat_conv.weight, gca.cat_conv.bias, term)]
    gca.zero_grad(), term.grad.zero_()
    ref = gca.cat_conv(torch.cat([x, term.expand_as(x)], dim=1))
    (ref**2).sum().backward()
    assert torch.allclose(ours, ref, atol=1e-5)
    for a, b in zip(grads, (gca.cat_conv.weight.grad, gca.cat_conv.bias.grad, term.grad)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_share_parameter_builds_one_shared_layer():
    m = build_model(get_preset("tiny", share_parameter=True), CHARSET)
    assert m.decoder[0] is m.decoder[1]
