"""mmfca/models/layers/multi_spectral_attention.py: the FCA layer is its
float64 formula (:func:`mmfca.testing.reference_fca`, scipy's DCT) for any
shape, frequency selection and channel count, with and without autograd,
eager and compiled; its gradients (first and second order) are right; the
release's keys and parameters; its errors; in-place inference; hooks and
:meth:`excite`; what users do to its modules (hooks on the FCs, an adapter
wrapping ``fc.0``, dynamic quantisation of a whole FcaNet) acts on them.
Precision and cost: test_precision_cost.py."""
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from mmfca.models import FcaNet, MultiSpectralAttention
from mmfca.models.layers.dct import get_grid_freqs
from mmfca.testing import reference_fca, release_squeeze


def randomized(layer, seed=0):
    torch.manual_seed(seed)
    for fc in (layer.fc[0], layer.fc[2]):
        torch.nn.init.normal_(fc.weight, std=0.5)
    return layer


NAMED = st.builds(lambda kind, n: f'{kind}{n}',
                  st.sampled_from(['top', 'low', 'bot']),
                  st.sampled_from([1, 2, 4, 8, 16, 32]))
EXPLICIT = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)),
                    min_size=1, max_size=8, unique=True)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(method=st.one_of(NAMED, EXPLICIT), channels=st.integers(1, 96),
       dct=st.sampled_from([7, 8, 14, 21, 28, 56]), h=st.integers(1, 40),
       w=st.integers(1, 40), batch=st.integers(1, 3),
       seed=st.integers(0, 2**16))
# the release's stage sizes, and detection-sized maps pooled to them
@example(method='top16', channels=64, dct=56, h=200, w=304, batch=2, seed=0)
@example(method='bot32', channels=64, dct=28, h=50, w=76, batch=2, seed=1)
@example(method='low4', channels=64, dct=7, h=25, w=38, batch=2, seed=2)
@example(method='top16', channels=72, dct=14, h=14, w=14, batch=2, seed=3)
def test_layer_equals_float64_formula(method, channels, dct, h, w, batch,
                                      seed):
    """Any channel count (groups equal, uneven, or fewer channels than
    frequencies), named or explicit frequencies, any filter and input
    size: the float32 layer is the float64 formula to float32 rounding."""
    layer = randomized(
        MultiSpectralAttention(channels, dct, dct, reduction=1,
                               freq_sel_method=method), seed)
    x = torch.randn(batch, channels, h, w)
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


def test_input_sized_filters_are_fcanets_at_stage_sizes():
    """``dct_h=dct_w=None``: on 56x56 and 14x14 maps the layer is the one
    with those filter sizes, with or without autograd; on other sizes it
    takes the input's own DCT (nothing stored)."""
    follow = randomized(MultiSpectralAttention(64, None, None, 4))
    assert 'dct_layer.weight' not in follow.state_dict()
    for size in (56, 14):
        fixed = MultiSpectralAttention(64, size, size, 4)
        fixed.load_state_dict(follow.state_dict(), strict=False)
        x = torch.randn(2, 64, size, size)
        torch.testing.assert_close(follow(x), fixed(x))
        with torch.no_grad():
            torch.testing.assert_close(follow(x), fixed(x))
    assert follow(torch.randn(1, 64, 9, 30)).shape == (1, 64, 9, 30)


@pytest.mark.parametrize('size', [(7, 7), (5, 9), (11, 8)])
def test_gradients_first_and_second_order_float64(size):
    """gradcheck and gradgradcheck in float64 with respect to the input and
    both FCs' weights (gradient penalties and meta-learning differentiate
    the gradient): through the squeeze, the excitation and the scale."""
    torch.manual_seed(0)
    layer = MultiSpectralAttention(8, 7, 7, 2, 'top4').double()
    names = ('fc.0.weight', 'fc.2.weight')

    def fn(x, w1, w2):
        return functional_call(layer, dict(zip(names, (w1, w2))), (x, ))

    inputs = (torch.randn(2, 8, *size, dtype=torch.float64),
              layer.fc[0].weight.detach().clone(),
              layer.fc[2].weight.detach().clone())
    inputs = tuple(t.requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_torch_compile_equals_eager():
    """Compiled forward and backward (filters computed in the graph,
    dynamic sizes from the second size on) equal eager's (cached
    filters)."""
    torch.manual_seed(0)
    layer = MultiSpectralAttention(32, 7, 7, 4)
    compiled = torch.compile(layer)
    for size in ((7, 7), (12, 10), (15, 9)):
        x = torch.randn(2, 32, *size)
        g = torch.randn(2, 32, *size)
        grads = []
        for fn in (compiled, layer):
            xi = x.clone().requires_grad_()
            out = fn(xi)
            (out * g).sum().backward()
            grads.append((out.detach(), xi.grad, layer.fc[0].weight.grad))
            layer.zero_grad()
        (out, gx, gw), (ref, ref_gx, ref_gw) = grads
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
        # gradients are reductions over N x H x W: float32 sums in another
        # order
        torch.testing.assert_close(gx, ref_gx, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(gw, ref_gw, rtol=1e-4, atol=1e-5)


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
    assert layer.dct_layer.grid_freqs == tuple(get_grid_freqs('top16'))


def test_explicit_frequencies_are_scaled_to_the_filter():
    layer = MultiSpectralAttention(8, 14, 14, 2, [(0, 0), (3, 4)])
    assert layer.dct_layer.freqs == ((0, 0), (6, 8))


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
    (dict(in_channels=16, filter_init='gauss'), "filter_init 'gauss'"),
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


@pytest.mark.parametrize('grad', [False, True])
def test_hooks_on_the_squeeze_fire_and_excite_gives_the_attention(grad):
    """With and without autograd, a hook on ``dct_layer`` sees the squeeze,
    and :meth:`excite` of that squeeze is the attention the output was
    scaled by: ``fc``'s modules applied to it."""
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
    torch.testing.assert_close(att, layer.fc(seen['squeeze']))


class LowRankAdapter(torch.nn.Module):
    """What PEFT's LoRA puts in a Linear's place: the wrapped layer plus a
    trainable low-rank update, ``base(y) + scale * B(A(y))``."""

    def __init__(self, base, rank=2, scale=0.5):
        super().__init__()
        self.base_layer, self.scale = base, scale
        self.lora_A = torch.nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = torch.nn.Linear(rank, base.out_features, bias=False)
        torch.nn.init.normal_(self.lora_B.weight)  # LoRA starts B at zero

    def forward(self, y):
        return self.base_layer(y) + self.scale * self.lora_B(self.lora_A(y))


@pytest.mark.parametrize('grad', [False, True])
def test_hooks_on_the_fcs_fire_and_what_they_return_is_used(grad):
    layer = randomized(MultiSpectralAttention(32, 7, 7, 4))
    x = torch.randn(2, 32, 9, 11)
    calls = []
    for name in ('fc.0', 'fc.1', 'fc.2', 'fc.3'):
        layer.get_submodule(name).register_forward_pre_hook(
            lambda m, i, name=name: calls.append(name))
    # fc.2's output replaced by zeros: every attention is sigmoid(0)
    layer.fc[2].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    with torch.set_grad_enabled(grad):
        out = layer(x)
    assert calls == ['fc.0', 'fc.1', 'fc.2', 'fc.3']
    torch.testing.assert_close(out, x * 0.5)


def test_an_adapter_wrapping_fc0_acts():
    """``fc.0`` replaced by a LoRA-style adapter (as PEFT replaces a
    targeted Linear): the output is the FCA formula with the adapter's
    effective weight ``W1 + scale * B A``, computed here from the weights
    and the release's squeeze, and the adapter's weights get gradients."""
    layer = randomized(MultiSpectralAttention(32, 7, 7, 4))
    x = torch.randn(2, 32, 9, 11)
    before = layer(x).detach()
    adapter = layer.fc[0] = LowRankAdapter(layer.fc[0])
    out = layer(x)
    w1 = adapter.base_layer.weight + adapter.scale * (
        adapter.lora_B.weight @ adapter.lora_A.weight)
    y = release_squeeze(x, layer.dct_layer.weight)
    att = torch.sigmoid(torch.relu(y @ w1.t()) @ layer.fc[2].weight.t())
    torch.testing.assert_close(out, x * att[:, :, None, None])
    assert not torch.allclose(out, before, atol=1e-3)
    out.sum().backward()
    assert adapter.lora_A.weight.grad.abs().sum() > 0


# torch's quantisation API warns of its future removal on torch >= 2.10
@pytest.mark.filterwarnings('ignore::DeprecationWarning',
                            'ignore::UserWarning')
def test_dynamic_quantisation_of_a_whole_fcanet():
    """``torch.ao.quantization.quantize_dynamic`` on an FcaNet-18: every
    FC becomes a dynamically quantised Linear (int8 weights), which the
    forward uses: features within int8 rounding of the float model's,
    not equal to them."""
    torch.manual_seed(0)
    model = FcaNet(depth=18).eval()
    quantized = torch.ao.quantization.quantize_dynamic(  # a copy
        model, {torch.nn.Linear}, dtype=torch.qint8)
    fcs = [m for name, m in quantized.named_modules()
           if name.endswith(('att.fc.0', 'att.fc.2'))]
    assert len(fcs) == 16 and all(
        isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in fcs)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for exact, approx in zip(model(x), quantized(x)):
            err = (exact - approx).abs().max() / exact.abs().max()
            assert 0 < err < 0.02
