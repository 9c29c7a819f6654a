"""Numerics of the FCA layer's computation: the filters with the adaptive
pooling folded in (cached per input size) equal the release's
pool-then-filter formula, in float32, float64, bfloat16 and float16, for
either memory format, with and without autograd, eager and compiled."""
import pytest
import torch
import torch.nn.functional as F

from mmfca.testing import attention, release_squeeze
from mmfca.models import MultiSpectralAttention


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


SIZES = [(7, 7), (1, 1), (1, 9), (3, 5), (8, 8), (13, 7), (14, 14), (20, 30),
         (56, 56), (57, 55), (100, 152), (200, 304)]


@pytest.mark.parametrize('dct', [7, 14, 56])
@pytest.mark.parametrize('size', SIZES)
def test_equals_straightforward_formula_float32(dct, size):
    torch.manual_seed(0)
    layer = MultiSpectralAttention(64, dct, dct, 4, 'top16')
    x = torch.randn(2, 64, *size)
    out = layer(x)
    assert rel(out, attention(layer, x, 'release')) < 1e-6
    # the squeeze alone, which is where the fast path differs
    assert rel(layer.dct_layer(x),
               release_squeeze(x, layer.dct_layer.weight)) < 1e-6


def test_filters_cached_per_size_and_shared_between_layers():
    """One filter computation per (frequencies, filter size, input size,
    dtype, device), shared by layers of any width with equal groups."""
    from mmfca.models.layers.dct_squeeze import cached_fca_filters
    cached_fca_filters.cache_clear()
    a = MultiSpectralAttention(32, 7, 7, 4)
    b = MultiSpectralAttention(64, 7, 7, 4)  # same filters, other width
    a(torch.randn(1, 32, 9, 9))
    b(torch.randn(1, 64, 9, 9))
    assert cached_fca_filters.cache_info()[:2] == (1, 1)  # hits, misses
    a(torch.randn(1, 32, 10, 9))
    a(torch.randn(1, 32, 10, 9).double())
    assert cached_fca_filters.cache_info()[:2] == (1, 3)
    uneven = MultiSpectralAttention(40, 7, 7, 4)  # per-channel filters
    uneven(torch.randn(1, 40, 9, 9))
    assert cached_fca_filters.cache_info()[:2] == (1, 4)
    assert cached_fca_filters.cache_info().maxsize > 0


@pytest.mark.parametrize('size', [(7, 7), (5, 9), (11, 8)])
def test_gradcheck_float64(size):
    torch.manual_seed(0)
    layer = MultiSpectralAttention(8, 7, 7, 2, 'top4').double()
    x = torch.randn(2, 8, *size, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, ), eps=1e-6, atol=1e-5)


def test_gradients_equal_straightforward_formula():
    torch.manual_seed(0)
    layer = MultiSpectralAttention(32, 14, 14, 4)
    x = torch.randn(2, 32, 25, 19, requires_grad=True)
    g = torch.randn(2, 32, 25, 19)
    (layer(x) * g).sum().backward()
    ours = (x.grad.clone(), layer.fc[0].weight.grad.clone())
    x.grad = None
    layer.zero_grad()
    (attention(layer, x, 'release') * g).sum().backward()
    assert rel(ours[0], x.grad) < 1e-5
    assert rel(ours[1], layer.fc[0].weight.grad) < 1e-5


def _cpu_autocast_supports(dtype):
    try:
        with torch.autocast('cpu', dtype=dtype):
            pass
    except RuntimeError:  # torch 2.1: bfloat16 only
        return False
    return True


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('size', [(56, 56), (200, 304)])
def test_low_precision_autocast_within_rounding(size, dtype):
    """Under autocast, large inputs (1e4 for bf16, 1e3 for fp16, whose
    squeeze exceeds fp16's range): the squeeze is within low-precision
    rounding of the exact squeeze of the same input (products rounded
    once, float32 sums: ``|err| <= 2 eps * sum |x * f|``, ``eps`` the
    dtype's unit roundoff), and the output is the input times the
    float32 excitation of that squeeze, rounded once. (An exact layer on
    the unrounded float32 input is not the reference: at this scale the
    input's own rounding moves some attentions by 0.1.)"""
    if not _cpu_autocast_supports(dtype):
        pytest.skip(f'torch {torch.__version__} has no CPU autocast to '
                    f'{dtype} (a limit of the test environment: fp16 '
                    f'autocast runs on GPUs there)')
    torch.manual_seed(0)
    layer = MultiSpectralAttention(64, 56, 56, 16)
    scale = 1e4 if dtype == torch.bfloat16 else 1e3
    x = (torch.randn(1, 64, *size) * scale).to(dtype)
    seen = {}
    layer.dct_layer.register_forward_hook(
        lambda m, i, o: seen.__setitem__('y', o))
    with torch.autocast('cpu', dtype=dtype):
        out = layer(x)
    assert out.dtype == dtype and torch.isfinite(out).all()
    y = seen['y']
    assert y.dtype == torch.float32
    pooled = F.adaptive_avg_pool2d(x.double(), 56)
    terms = pooled * layer.dct_layer.weight.double()
    eps = torch.finfo(dtype).eps / 2
    bound = 2 * eps * terms.abs().sum((2, 3))
    assert ((y.double() - terms.sum((2, 3))).abs() <= bound).all()
    with torch.no_grad():
        att = layer.fc(y)
    expected = x.double() * att.double()[:, :, None, None]
    # relative rounding, or the subnormal spacing for what underflows (an
    # attention below fp16's smallest normal, as SE's would)
    subnormal = torch.finfo(dtype).tiny * torch.finfo(dtype).eps
    assert ((out.double() - expected).abs() <= 2 * eps * expected.abs() +
            (x.double().abs() + 1) * subnormal).all()


def _cpu_half_matmul():
    try:
        torch.ones(1, 2, 2, dtype=torch.float16).bmm(
            torch.ones(1, 2, 1, dtype=torch.float16))
    except RuntimeError:
        return False
    return True


@pytest.mark.skipif(
    not _cpu_half_matmul(),
    reason=f'torch {torch.__version__} has no CPU half-precision matmul '
    f'(a limit of the test environment: fp16 runs on GPUs there)')
def test_fp16_range_is_respected():
    """The DC term of a 56x56 map of 1e4 is 5.6e5, beyond fp16's 65504: the
    squeeze's products stay in range, the sum is float32, and a
    half-precision FC sees normalised inputs."""
    layer = MultiSpectralAttention(16, 56, 56, 4, 'top1').half()
    x = torch.full((1, 16, 56, 56), 1e4, dtype=torch.float16)
    y = layer.dct_layer(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, torch.full((1, 16), 5.6e5), rtol=1e-3,
                               atol=0)
    out = layer(x)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    ref = attention(layer.double(), x.double(), 'release')
    assert rel(out.double(), ref) < 1e-2


def test_channels_last_forward_and_backward():
    torch.manual_seed(0)
    layer = MultiSpectralAttention(32, 7, 7, 4)
    x = torch.randn(2, 32, 11, 9)
    g = torch.randn(2, 32, 11, 9)
    grads = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        xi = x.clone().to(memory_format=fmt).requires_grad_()
        out = layer(xi)
        (out * g).sum().backward()
        grads.append((out.detach(), xi.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_with_and_without_autograd_agree():
    torch.manual_seed(0)
    layer = MultiSpectralAttention(64, 14, 14, 4)
    for size in ((14, 14), (30, 17)):
        x = torch.randn(2, 64, *size)
        with torch.no_grad():
            ref = layer(x)
        out = layer(x.requires_grad_())
        assert out.grad_fn is not None
        assert rel(out.detach(), ref) < 1e-6


def test_torch_compile():
    """Compiled forward and backward (filters computed in the graph,
    dynamic sizes on the second size) equal eager's (cached filters)."""
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


@pytest.mark.skipif(
    not _cpu_half_matmul(),
    reason=f'torch {torch.__version__} has no CPU half-precision matmul '
    f'(a limit of the test environment: fp16 runs on GPUs there)')
def test_half_model_large_inputs_finite_outputs_and_gradients_like_se():
    """A model cast to float16 as a whole, inputs of magnitude 1e3 at a
    detection-sized map: SE's output and input gradient stay finite, and
    so do FCA's, whose squeeze is sqrt(56 * 56) = 56 times GAP's."""
    torch.manual_seed(0)
    layer = MultiSpectralAttention(64, 56, 56, 16).half()
    x = (torch.randn(2, 64, 200, 304) * 1e3).half().requires_grad_()
    fc = layer.fc
    se_x = x.detach().clone().requires_grad_()
    se_out = se_x * fc(se_x.mean((2, 3)))[:, :, None, None]
    se_out.float().square().mean().backward()
    assert torch.isfinite(se_out).all() and torch.isfinite(se_x.grad).all()
    layer.zero_grad()
    out = layer(x)
    out.float().square().mean().backward()
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    # (the FC weights' gradients exceed float16 for SE as for FCA at this
    # scale: that is loss scaling's job, not the layer's)
