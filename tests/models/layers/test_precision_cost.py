"""The FCA layer's precision and cost on the CPU (CUDA: test_cuda.py).

Cost, pinned by device-independent counts (not times): the ATen kernels
one call dispatches and the ones among them that read or write a full
N x C x H x W tensor (:func:`mmfca.testing.count_ops`), against SE (the
same excitation on global average pooling), in float32 and bf16 autocast,
NCHW and channels_last (same values, no layout copy). Precision: under
autocast the squeeze and the output are within one rounding of exact, and
a model cast to float16/bfloat16 as a whole keeps the squeeze (up to
``GAP * sqrt(H * W)``) in float32 and runs its FCs in its own dtype,
finite like SE."""
import pytest
import torch
import torch.nn.functional as F

from mmfca.models import MultiSpectralAttention
from mmfca.models.layers.dct_squeeze import _LowPrecisionSum
from mmfca.testing import attention, count_ops

# (name, input shape, DCT filter side): a map of the filter's size, and a
# detection-sized one that the layer pools to the filter
SHAPES = [('filter-sized', (2, 64, 7, 7), 7),
          ('detection-sized', (1, 64, 200, 304), 56)]
FORMATS = {'NCHW': torch.contiguous_format,
           'channels_last': torch.channels_last}
# computation's dtype: float32, or bfloat16 autocast
DTYPES = {'fp32': None, 'bf16-autocast': torch.bfloat16}


def count(fn, layer, x, train, autocast):
    grad = torch.randn_like(x)

    def call():
        with torch.set_grad_enabled(train):
            with torch.autocast('cpu', dtype=autocast or torch.bfloat16,
                                enabled=autocast is not None):
                out = fn()
            if train:  # backward outside autocast, as AMP recommends
                out.backward(grad)
        return out

    call()  # filters cached
    x.grad = None
    layer.zero_grad(set_to_none=True)
    result = {}
    counted = count_ops(lambda: result.setdefault('out', call()), x.numel())
    return counted, result['out']


#: full-size passes in float32, either format: the squeeze is a product and
#: a sum where SE's GAP is one reduction
FP32_PASSES = {
    True: ['mul', 'sum', 'mul', 'mul', 'mul', 'sum', 'mul', 'add'],
    False: ['mul', 'sum', 'mul'],
}


@pytest.mark.parametrize('dtype', sorted(DTYPES))
@pytest.mark.parametrize('train', [True, False], ids=['fwd+bwd', 'infer'])
@pytest.mark.parametrize('fmt', sorted(FORMATS))
@pytest.mark.parametrize('name,shape,dct', SHAPES)
def test_kernels_and_full_size_passes_within_se_budget(
        name, shape, dct, fmt, train, dtype):
    """At most SE's kernels + 3 and SE's full-size passes + 1; in float32
    at most +1 kernel (torch 2.14: +1; torch 2.1, whose GAP backward takes
    one more kernel: 0) and the full-size passes pinned; no layout or
    dtype copy, the input's memory format kept, channels_last's values
    NCHW's."""
    torch.manual_seed(0)
    layer = MultiSpectralAttention(shape[1], dct, dct)
    x = torch.randn(shape).to(memory_format=FORMATS[fmt])
    if DTYPES[dtype] is not None:
        x = x.to(DTYPES[dtype])
    x.requires_grad_(train)
    se, _ = count(lambda: attention(layer, x, 'gap'), layer, x, train,
                  DTYPES[dtype])
    fca, out = count(lambda: layer(x), layer, x, train, DTYPES[dtype])
    assert len(fca.kernels) <= len(se.kernels) + 3, f'SE: {se}; FCA: {fca}'
    assert len(fca.full_size) <= len(se.full_size) + 1, \
        f'SE: {se}; FCA: {fca}'
    if dtype == 'fp32':
        assert len(fca.kernels) <= len(se.kernels) + 1, f'{se}; {fca}'
        assert fca.full_size == FP32_PASSES[train], str(fca)
    assert not {'copy_', 'clone', '_to_copy', 'contiguous'} & set(
        fca.full_size), str(fca)
    assert out.is_contiguous(memory_format=FORMATS[fmt])
    if dtype == 'fp32' and fmt == 'channels_last':
        with torch.no_grad():
            nchw = layer(x.detach().contiguous())
        torch.testing.assert_close(out.detach(), nchw)


def test_counter_sees_a_layout_copy():
    """The proxy counts what it claims: a contiguous() of a channels_last
    tensor is one kernel and one full-size pass."""
    x = torch.randn(2, 8, 5, 5).to(memory_format=torch.channels_last)
    counted = count_ops(lambda: x.contiguous(), x.numel())
    assert counted.kernels == ['clone'] and counted.full_size == ['clone']
    assert count_ops(lambda: x.view(2, 8, 25).sum(),
                     x.numel()).kernels == ['sum']


def _cpu_autocast_supports(dtype):
    try:
        with torch.autocast('cpu', dtype=dtype):
            pass
    except RuntimeError:  # torch 2.1: bfloat16 only
        return False
    return True


def _cpu_half_matmul():
    try:
        torch.ones(1, 2, 2, dtype=torch.float16).bmm(
            torch.ones(1, 2, 1, dtype=torch.float16))
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('size', [(56, 56), (200, 304)])
def test_autocast_within_rounding(size, dtype):
    """Under autocast, large inputs (1e4 for bf16, 1e3 for fp16, whose
    squeeze exceeds fp16's range): the squeeze is float32 and within
    low-precision rounding of the exact squeeze of the same input
    (products rounded once, float32 sums: ``|err| <= 2 eps * sum |x *
    f|``, ``eps`` the dtype's unit roundoff), and the output is the input
    times the float32 excitation of that squeeze, rounded once. (An exact
    layer on the unrounded float32 input is not the reference: at this
    scale the input's own rounding moves some attentions by 0.1.)"""
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
        att = layer.fc(y)  # float32, no autocast
    expected = x.double() * att.double()[:, :, None, None]
    # relative rounding, or the subnormal spacing for what underflows (an
    # attention below fp16's smallest normal, as SE's would)
    subnormal = torch.finfo(dtype).tiny * torch.finfo(dtype).eps
    assert ((out.double() - expected).abs() <= 2 * eps * expected.abs() +
            (x.double().abs() + 1) * subnormal).all()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_model_squeezes_in_float32_and_excites_in_its_dtype(dtype):
    """A model cast to float16/bfloat16 as a whole: the DC term of a 56x56
    map of 1e4 is 5.6e5, beyond fp16's 65504, and stays exact in the
    float32 squeeze; the FCs then run as modules in the model's dtype, as
    SE's do, on the squeeze saturated to that dtype's range (finite, not
    inf), and their gradients reach the half-precision weights; at a
    detection-sized map of 1e3 the output and the input gradient stay
    finite, as SE's do (the FC weights' own gradients exceed float16 for
    SE as for FCA at this scale: loss scaling's job)."""
    if dtype == torch.float16 and not _cpu_half_matmul():
        pytest.skip(f'torch {torch.__version__} has no CPU half-precision '
                    f'matmul (a limit of the test environment: fp16 runs '
                    f'on GPUs there)')
    torch.manual_seed(0)
    dc = MultiSpectralAttention(16, 56, 56, 4, 'top1').to(dtype)
    y = dc.dct_layer(torch.full((1, 16, 56, 56), 1e4, dtype=dtype))
    assert y.dtype == torch.float32
    # the (0, 0) filter 1/56 rounded once to the dtype
    torch.testing.assert_close(y, torch.full((1, 16), 5.6e5),
                               rtol=torch.finfo(dtype).eps, atol=0)
    att = dc.excite(y)
    saturated = y.clamp(max=torch.finfo(dtype).max).to(dtype)
    w1, w2 = (dc.fc[i].weight.detach() for i in (0, 2))
    assert att.dtype == dtype and torch.isfinite(att).all()
    torch.testing.assert_close(att, torch.sigmoid(
        torch.relu(saturated @ w1.t()) @ w2.t()))
    att.float().sum().backward()
    assert dc.fc[0].weight.grad.dtype == dtype

    layer = MultiSpectralAttention(64, 56, 56, 16).to(dtype)
    x = (torch.randn(2, 64, 200, 304) * 1e3).to(dtype).requires_grad_()
    se_x = x.detach().clone().requires_grad_()
    se_out = attention(layer, se_x, 'gap')
    se_out.float().square().mean().backward()
    assert torch.isfinite(se_out).all() and torch.isfinite(se_x.grad).all()
    out = layer(x)
    out.float().square().mean().backward()
    assert out.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize('layer_dtype,input_dtype,autocast', [
    (torch.float32, torch.float64, None),
    (torch.float32, torch.bfloat16, None),
    (torch.bfloat16, torch.bfloat16, torch.bfloat16),
    (torch.float64, torch.float32, None),
])
def test_the_fcs_run_in_their_own_dtype(layer_dtype, input_dtype, autocast):
    """Whatever the input's dtype and autocast, the FCs run in their
    parameters' dtype on the squeeze cast to it (float64 reference of the
    same squeeze and weights, within the FCs' dtype's rounding), and the
    output has the input's dtype."""
    torch.manual_seed(0)
    layer = MultiSpectralAttention(32, 7, 7, 4).to(layer_dtype)
    x = torch.randn(2, 32, 9, 11).to(input_dtype)
    with torch.autocast('cpu', dtype=autocast or torch.bfloat16,
                        enabled=autocast is not None):
        out = layer(x)
        y = layer.dct_layer(x)
    w1, w2 = (layer.fc[i].weight.double() for i in (0, 2))
    att = torch.sigmoid(torch.relu(y.to(layer_dtype).double() @ w1.t())
                        @ w2.t())
    eps = torch.finfo(layer_dtype).eps
    assert out.dtype == input_dtype
    torch.testing.assert_close(
        out.double(), x.double() * att[:, :, None, None],
        rtol=8 * max(eps, torch.finfo(input_dtype).eps), atol=1e-6)


def test_low_precision_sum_double_backward():
    """The bf16/fp16 squeeze's own backward (the small gradient cast before
    it is broadcast) is differentiable again: float64 gradgradcheck."""
    prod = torch.randn(2, 4, 2, 3, 3, dtype=torch.float64,
                       requires_grad=True)
    assert torch.autograd.gradgradcheck(
        lambda p: _LowPrecisionSum.apply(p, torch.float64), (prod, ))
