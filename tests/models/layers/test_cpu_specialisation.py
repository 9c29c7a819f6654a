"""The FCA layer's CPU specialisation (``cpu_specialisation.py``) against
the plain path and against numerical gradients: every gradient of
the fused function, every combination of what requires a gradient, the
sliced sums, and the transforms it leaves to the plain path."""
import pytest
import torch
import torch.autograd.forward_ad as fwAD

from mmfca.models import MultiSpectralAttention
from mmfca.models.layers import cpu_specialisation, cpu_specialisations
from mmfca.models.layers.cpu_specialisation import FusedCPUTraining
from mmfca.models.layers.dct_squeeze import multi_spectral_squeeze


def randomized(channels, dct=7, reduction=4, dtype=torch.float64):
    torch.manual_seed(0)
    layer = MultiSpectralAttention(channels, dct, dct, reduction).to(dtype)
    for fc in (layer.fc[0], layer.fc[2]):
        torch.nn.init.normal_(fc.weight, std=0.5)
    return layer


@pytest.mark.parametrize('channels,size', [(16, (7, 7)), (16, (1, 1)),
                                           (54, (9, 11)), (72, (3, 20))])
def test_fused_function_gradcheck_input_and_both_fcs(channels, size):
    """float64 gradcheck over x, fc1 and fc2, equal groups (16) and
    per-channel filters (54, 72 channels for 16 frequencies)."""
    layer = randomized(channels)
    x = torch.randn(2, channels, *size, dtype=torch.float64,
                    requires_grad=True)
    filters = layer.dct_layer.filters(x)
    w1 = layer.fc[0].weight.detach().clone().requires_grad_()
    w2 = layer.fc[2].weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, w1, w2: FusedCPUTraining.apply(
            x, filters, multi_spectral_squeeze(x.detach(), filters), w1, w2),
        (x, w1, w2), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize('needs', ['all', 'input', 'weights', 'fc1'])
@pytest.mark.parametrize('channels', [64, 54])
def test_every_gradient_equals_the_plain_path(channels, needs):
    """Whatever requires a gradient (a frozen FC, an input that does not
    need one), the fused path gives the plain path's gradients (float64,
    to 1e-10), also for a channels_last output gradient."""
    layer = randomized(channels)
    layer.fc[0].weight.requires_grad_(needs in ('all', 'weights', 'fc1'))
    layer.fc[2].weight.requires_grad_(needs in ('all', 'weights'))
    x = torch.randn(2, channels, 20, 17, dtype=torch.float64)
    x.requires_grad_(needs in ('all', 'input'))
    g = torch.randn(2, channels, 20, 17, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last)
    wanted = [t for t in (x, layer.fc[0].weight, layer.fc[2].weight)
              if t.requires_grad]
    grads = {}
    for path in (True, False):
        with cpu_specialisations(path):
            assert layer.fused_cpu_training(x) == path
            out = layer(x)
        grads[path] = torch.autograd.grad(out, wanted, g)
    assert len(grads[True]) == len(wanted) > 0
    for fused, plain in zip(grads[True], grads[False]):
        torch.testing.assert_close(fused, plain, rtol=1e-10, atol=1e-12)


def test_sliced_forward_and_backward_equal_the_plain_path(monkeypatch):
    """With temporaries capped at a fifth of the map (slices that do not
    divide the 16 groups), the sliced squeeze and the fused backward give
    the plain path's output and squeeze (bit for bit) and gradients."""
    layer = randomized(64)
    x = torch.randn(2, 64, 14, 14, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 64, 14, 14, dtype=torch.float64)
    monkeypatch.setattr(cpu_specialisation, 'CPU_TEMPORARY_BYTES',
                        x.numel() * x.element_size() // 5)
    results = {}
    for path in (True, False):
        with cpu_specialisations(path):
            out = layer(x)
            with torch.no_grad():
                squeeze = layer.dct_layer(x)
        results[path] = (out, squeeze, *torch.autograd.grad(
            out, (x, layer.fc[0].weight, layer.fc[2].weight), g))
    torch.testing.assert_close(results[True][:2], results[False][:2],
                               rtol=0, atol=0)
    torch.testing.assert_close(results[True][2:], results[False][2:],
                               rtol=1e-10, atol=1e-12)


def test_function_transforms_and_forward_ad_take_the_plain_path():
    """vmap, jacrev and forward-mode AD need what the fused function lacks
    (setup_context, jvp): the layer leaves them to the plain path and
    gives its results."""
    layer = randomized(32, dtype=torch.float32)
    x = torch.randn(2, 32, 9, 11)
    tangent = torch.randn_like(x)

    def transforms():
        batched = torch.func.vmap(lambda xi: layer(xi[None]))(x)
        jac = torch.func.jacrev(lambda x: layer(x).sum((2, 3)))(x[:1])
        with fwAD.dual_level():
            jvp = fwAD.unpack_dual(layer(fwAD.make_dual(x, tangent))).tangent
        return batched, jac, jvp

    specialised = transforms()
    with cpu_specialisations(False):
        plain = transforms()
    torch.testing.assert_close(specialised, plain)
