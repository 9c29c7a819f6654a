import pytest
import torch

from mmfca.testing import reference_fca
from mmfca.models import MultiSpectralAttention


def randomized(layer):
    torch.manual_seed(0)
    for fc in (layer.fc[0], layer.fc[2]):
        torch.nn.init.normal_(fc.weight, std=0.5)
    return layer


@pytest.mark.parametrize('dct,size', [(7, (7, 7)), (14, (14, 14)),
                                      (56, (56, 56)), (7, (25, 38)),
                                      (14, (20, 9)), (28, (50, 76)),
                                      (7, (5, 5)), (56, (200, 304))])
@pytest.mark.parametrize('method', ['top16', 'low4', 'bot32'])
def test_layer_equals_float64_formula(dct, size, method):
    layer = randomized(
        MultiSpectralAttention(64, dct_h=dct, dct_w=dct, reduction=4,
                               freq_sel_method=method))
    x = torch.randn(2, 64, *size)
    out = layer(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out.double(), reference_fca(layer, x),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('grad', [False, True])
@pytest.mark.parametrize('dct,size', [(7, (7, 7)), (14, (20, 9)),
                                      (56, (200, 304)), (28, (28, 28))])
def test_float64_stays_float64(dct, size, grad):
    """A float64 layer on a float64 input agrees with the float64 formula
    to 1e-12 with and without autograd: no step (the filters, the sum,
    the excitation) drops to float32, which alone would cost about
    1e-9."""
    layer = randomized(
        MultiSpectralAttention(64, dct_h=dct, dct_w=dct, reduction=4)).double()
    x = torch.randn(2, 64, *size, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        out = layer(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.detach(), reference_fca(layer, x),
                               rtol=1e-12, atol=1e-12)


def test_dc_only_layer_is_se_on_gap():
    """With frequency (0, 0) only, FCA is SE with GAP scaled by sqrt(HW)."""
    layer = randomized(MultiSpectralAttention(32, 7, 7, 4, 'top1'))
    x = torch.randn(3, 32, 7, 7)
    z = x.mean((2, 3)) * 7
    att = torch.sigmoid(layer.fc[2](torch.relu(layer.fc[0](z))))
    torch.testing.assert_close(layer(x), x * att[:, :, None, None])


def test_explicit_frequency_list():
    layer = randomized(MultiSpectralAttention(8, 14, 14, 2, [(0, 0), (3, 4)]))
    x = torch.randn(1, 8, 30, 17)
    torch.testing.assert_close(layer(x).double(), reference_fca(layer, x),
                               rtol=1e-5, atol=1e-5)
    assert layer.dct_layer.freqs == ((0, 0), (6, 8))


def test_release_key_layout_and_no_extra_parameters():
    layer = MultiSpectralAttention(256, 56, 56)
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {
        'dct_layer.weight': (256, 56, 56),
        'fc.0.weight': (16, 256),
        'fc.2.weight': (256, 16),
    }
    # the filter is a fixed buffer: only the two FCs are parameters
    assert sum(p.numel() for p in layer.parameters()) == 2 * 256 * 16


def test_loading_a_non_dct_filter_is_refused():
    layer = MultiSpectralAttention(32, 7, 7, 4)
    state = layer.state_dict()
    state['dct_layer.weight'] = torch.randn(32, 7, 7)
    with pytest.raises(ValueError, match='not the fixed DCT filter'):
        layer.load_state_dict(state)


def test_gradients_flow_to_input_and_fc():
    layer = MultiSpectralAttention(32, 7, 7, 4)
    x = torch.randn(2, 32, 9, 11, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert layer.fc[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_channels=64, freq_sel_method='top3'), "'top3'.*allowed: top1"),
    (dict(in_channels=64, freq_sel_method='mid16'), "'mid16'.*allowed"),
    (dict(in_channels=0, reduction=1), r'in_channels=0 .*positive integer'),
    (dict(in_channels=16, reduction=32), r'reduction=32 .*\[1, 16\]'),
    (dict(in_channels=16, dct_h=5), r'dct_h=5 cannot hold the 7x7'),
    (dict(in_channels=16, freq_sel_method=[(0, 7)]),
     r'Malformed frequency pair \(0, 7\)'),
    (dict(in_channels=16, freq_sel_method=[(0, 1, 2)]),
     r'Malformed frequency pair \(0, 1, 2\)'),
    (dict(in_channels=16, freq_sel_method=[]), 'Empty frequency list'),
])
def test_bad_construction_names_value_and_allowed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiSpectralAttention(**kwargs)


def test_bad_input_tensors():
    layer = MultiSpectralAttention(32, 7, 7, 4)
    with pytest.raises(ValueError,
                       match=r'4D .*got a 3D tensor.*\(32, 7, 7\)'):
        layer(torch.randn(32, 7, 7))
    with pytest.raises(ValueError,
                       match='in_channels=32, got an input with 16 channels'):
        layer(torch.randn(1, 16, 7, 7))


def test_inplace_only_without_autograd():
    torch.manual_seed(0)
    layer = MultiSpectralAttention(16, 7, 7, 4, inplace=True)
    x = torch.randn(2, 16, 9, 9)
    expected = MultiSpectralAttention(16, 7, 7, 4)
    expected.load_state_dict(layer.state_dict())
    ref = expected(x.clone())
    with torch.no_grad():
        y = x.clone()
        out = layer(y)
    assert out.data_ptr() == y.data_ptr()
    torch.testing.assert_close(out, ref)
    # with autograd on, the input is left alone
    z = x.clone().requires_grad_()
    out = layer(z)
    assert out.data_ptr() != z.data_ptr()
    torch.testing.assert_close(out, ref)
    # the default never writes to its input
    with torch.no_grad():
        y = x.clone()
        expected(y)
    assert torch.equal(y, x)


@pytest.mark.parametrize('channels,sizes', [(24, [2] * 8 + [1] * 8),
                                            (54, [4] * 6 + [3] * 10),
                                            (72, [5] * 8 + [4] * 8),
                                            (8, [1] * 8 + [0] * 8)])
def test_uneven_channel_counts_split_as_equal_as_possible(
        channels, sizes):
    """Channel counts that 16 frequencies do not divide (MobileNetV3's 72,
    MMPretrain's SELayer test's 54) get groups of sizes differing by at
    most one, first groups larger; the layer is the formula on them."""
    from mmfca.models import channel_groups
    assert channel_groups(channels, 16) == sizes
    layer = randomized(MultiSpectralAttention(channels, 14, 14, 1, 'top16'))
    x = torch.randn(2, channels, 20, 17)
    torch.testing.assert_close(layer(x).double(), reference_fca(layer, x),
                               rtol=1e-5, atol=1e-5)
    # the stored bank is the release's layout, frequency k on group k
    bank = layer.dct_layer.weight
    starts = [sum(sizes[:k]) for k in range(16)]
    for k, (start, size) in enumerate(zip(starts, sizes)):
        for ch in range(start, start + size):
            torch.testing.assert_close(bank[ch], bank[start])
        if size and k and sizes[k - 1]:
            assert not torch.allclose(bank[start], bank[starts[k - 1]])


def test_even_split_is_the_releases():
    from mmfca.models import channel_groups
    assert channel_groups(256, 16) == [16] * 16
    assert channel_groups(2048, 16) == [128] * 16


@pytest.mark.parametrize('grad', [False, True])
def test_hooks_on_the_squeeze_fire_and_excite_gives_the_attention(grad):
    """With and without autograd, a hook on ``dct_layer`` sees the squeeze,
    and :meth:`excite` of that squeeze is the attention the output was
    scaled by (the FCs are applied through their weights, so analysis
    tools take the attention from there, not from hooks on ``fc``)."""
    layer = MultiSpectralAttention(32, 7, 7, 4)
    seen = {}
    layer.dct_layer.register_forward_hook(
        lambda m, i, o: seen.__setitem__('squeeze', o))
    x = torch.randn(2, 32, 9, 11, requires_grad=grad)
    with torch.set_grad_enabled(grad):
        out = layer(x)
    assert seen['squeeze'].shape == (2, 32)
    att = layer.excite(seen['squeeze'])
    torch.testing.assert_close(out, x * att[:, :, None, None])
    torch.testing.assert_close(att, layer.fc(layer.dct_layer(x.detach())))


def test_autocast_squeeze_and_excitation_run_in_float32():
    """Under autocast the squeeze sums in float32 and the excitation runs
    in float32 on the float32 weights: the attention equals the float32
    one without autocast, to float32 rounding, not bf16's."""
    layer = MultiSpectralAttention(32, 7, 7, 4)
    x = torch.randn(2, 32, 14, 14).bfloat16()
    seen = {}
    layer.dct_layer.register_forward_hook(
        lambda m, i, o: seen.__setitem__('squeeze', o))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
        att = layer.excite(seen['squeeze'])
    assert seen['squeeze'].dtype == att.dtype == torch.float32
    torch.testing.assert_close(att, layer.excite(seen['squeeze']),
                               rtol=1e-6, atol=1e-7)
    assert out.dtype == torch.bfloat16


@pytest.mark.parametrize('model_dtype', [torch.float16, torch.bfloat16])
def test_half_model_excites_in_float32(model_dtype):
    """A model cast to float16/bfloat16 as a whole: the excitation runs in
    float32 on float32 copies of the FC weights, whose gradients reach the
    half-precision weights."""
    torch.manual_seed(0)
    layer = MultiSpectralAttention(32, 7, 7, 4).to(model_dtype)
    y = torch.randn(2, 32) * 100
    att = layer.excite(y)
    assert att.dtype == torch.float32
    w1, w2 = (layer.fc[i].weight.float() for i in (0, 2))
    torch.testing.assert_close(att, torch.sigmoid(torch.relu(y @ w1.t()) @
                                                  w2.t()))
    att.sum().backward()
    assert layer.fc[0].weight.grad.dtype == model_dtype


def test_double_backward():
    """Gradient penalties and meta-learning differentiate the gradient:
    float64 gradgradcheck through the squeeze, the excitation and the
    scale, also through the low-precision sum's backward."""
    torch.manual_seed(0)
    layer = MultiSpectralAttention(16, 7, 7, 4).double()
    x = torch.randn(2, 16, 9, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(layer, (x, ))
    from mmfca.models.layers.dct_squeeze import _LowPrecisionSum
    prod = torch.randn(2, 4, 2, 3, 3, dtype=torch.float64,
                       requires_grad=True)
    assert torch.autograd.gradgradcheck(
        lambda p: _LowPrecisionSum.apply(p, torch.float64), (prod, ))
