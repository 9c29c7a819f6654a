"""FCA at SE's cost, pinned by device-independent counts (not times): the
ATen kernels one call dispatches and the ones among them that read or write
a full N x C x H x W tensor (see :mod:`mmfca.testing.op_counts`). SE is the
same excitation on global average pooling."""
import pytest
import torch

from mmfca.testing import attention
from mmfca.models import MultiSpectralAttention
from mmfca.testing import count_ops

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
    one more kernel: 0) and the full-size passes pinned."""
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
    # no layout or dtype copy of the feature, and the input's format kept
    assert not {'copy_', 'clone', '_to_copy', 'contiguous'} & set(
        fca.full_size), str(fca)
    assert out.is_contiguous(memory_format=FORMATS[fmt])


def test_counter_sees_a_layout_copy():
    """The proxy counts what it claims: a contiguous() of a channels_last
    tensor is one kernel and one full-size pass."""
    x = torch.randn(2, 8, 5, 5).to(memory_format=torch.channels_last)
    counted = count_ops(lambda: x.contiguous(), x.numel())
    assert counted.kernels == ['clone'] and counted.full_size == ['clone']
    assert count_ops(lambda: x.view(2, 8, 25).sum(),
                     x.numel()).kernels == ['sum']
