"""The FCA layer on CUDA (skipped where torch sees no GPU): the float64
formula in float32, bf16/fp16 autocast within rounding, channels_last,
deterministic mode, and the same kernel budget as on the CPU."""
import pytest
import torch

from mmfca.testing import reference_fca
from mmfca.models import MultiSpectralAttention
from mmfca.testing import count_ops

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason='needs a CUDA GPU (torch sees none)')
]

CUDA = torch.device('cuda')


def layer_on_gpu(channels=64, dct=56, reduction=4, seed=0):
    torch.manual_seed(seed)
    layer = MultiSpectralAttention(channels, dct, dct, reduction)
    for fc in (layer.fc[0], layer.fc[2]):
        torch.nn.init.normal_(fc.weight, std=0.5)
    return layer.to(CUDA)


@pytest.mark.parametrize('size', [(56, 56), (200, 304), (25, 38)])
def test_float32_equals_float64_formula_outputs_and_gradients(
        size):
    layer = layer_on_gpu()
    x = torch.randn(2, 64, *size, device=CUDA, requires_grad=True)
    g = torch.randn_like(x)
    out = layer(x)
    (out * g).sum().backward()
    ref_layer = layer_on_gpu().double()
    xd = x.detach().double().requires_grad_()
    ref = ref_layer(xd)
    (ref * g.double()).sum().backward()
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    # gradients: float32 sums over H x W and the batch, so relative to
    # their largest entry (first run on an H200: 1.3e-6 at 1e-2 scale)
    err = (x.grad.double() - xd.grad).abs().max()
    assert err <= 1e-5 * xd.grad.abs().max(), err
    # and the float64 layer on CUDA is the scipy formula
    torch.testing.assert_close(
        ref.detach().cpu(), reference_fca(ref_layer.cpu(), xd.detach().cpu()),
        rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_within_rounding_and_finite_gradients(dtype):
    """As the CPU test (test_precision_cost.py), on CUDA: under
    autocast the squeeze is within one rounding per product of the exact
    squeeze of the same input, the output is the input times the float32
    excitation of that squeeze, and the gradients are finite."""
    layer = layer_on_gpu()
    x = (torch.randn(2, 64, 200, 304, device=CUDA) * 1e3).to(dtype)
    x.requires_grad_()
    seen = {}
    layer.dct_layer.register_forward_hook(
        lambda m, i, o: seen.__setitem__('y', o))
    with torch.autocast('cuda', dtype=dtype):
        out = layer(x)
    out.float().square().mean().backward()
    assert out.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    y = seen['y']
    assert y.dtype == torch.float32
    terms = torch.nn.functional.adaptive_avg_pool2d(
        x.detach().double(), 56) * layer.dct_layer.weight.double()
    eps = torch.finfo(dtype).eps / 2
    assert ((y.double() - terms.sum((2, 3))).abs() <=
            2 * eps * terms.abs().sum((2, 3))).all()
    with torch.no_grad():
        expected = x.double() * layer.fc(y.detach()).double()[:, :, None,
                                                              None]
    subnormal = torch.finfo(dtype).tiny * torch.finfo(dtype).eps
    assert ((out.double() - expected).abs() <= 2 * eps * expected.abs() +
            (x.detach().double().abs() + 1) * subnormal).all()


def test_channels_last_same_results_and_format():
    layer = layer_on_gpu()
    x = torch.randn(2, 64, 50, 76, device=CUDA)
    g = torch.randn_like(x)
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        xi = x.clone().to(memory_format=fmt).requires_grad_()
        out = layer(xi)
        (out * g).sum().backward()
        assert out.is_contiguous(memory_format=fmt)
        results.append((out.detach(), xi.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_deterministic_mode_repeats_bit_identically():
    layer = layer_on_gpu()
    x = torch.randn(2, 64, 50, 76, device=CUDA)
    runs = []
    torch.use_deterministic_algorithms(True)
    try:
        for _ in range(2):
            layer.zero_grad()
            xi = x.clone().requires_grad_()
            out = layer(xi)
            out.square().sum().backward()
            runs.append((out.detach(), xi.grad, layer.fc[0].weight.grad))
    finally:
        torch.use_deterministic_algorithms(False)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.parametrize('fmt', [torch.contiguous_format,
                                 torch.channels_last])
def test_kernel_budget_on_cuda(fmt):
    """The dispatch counts of the CPU tests hold on CUDA: SE's + 1 kernel
    and + 1 full-size pass, in float32, forward + backward."""
    layer = layer_on_gpu()
    x = torch.randn(2, 64, 200, 304, device=CUDA).to(
        memory_format=fmt).requires_grad_()
    g = torch.randn_like(x)

    def se():
        (x * layer.fc(x.mean((2, 3)))[:, :, None, None]).backward(g)

    def fca():
        layer(x).backward(g)

    counts = []
    for fn in (se, fca):
        fn()
        x.grad = None
        layer.zero_grad(set_to_none=True)
        counts.append(count_ops(fn, x.numel()))
    se_count, fca_count = counts
    assert len(fca_count.kernels) == len(se_count.kernels) + 1, counts
    assert len(fca_count.full_size) == len(se_count.full_size) + 1, counts
