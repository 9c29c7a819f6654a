"""The multi-spectral squeeze (mmfca/models/layers/dct_squeeze.py) and its
switch into other channel attentions (squeeze_switch.py,
channel_attentions.py): the (0, 0) term is GAP (the paper's theorem, per
module), input-sized filters are the float64 DCT of the input, the fixed
filters are cached per input size and refuse other filters from a
checkpoint, the ablation's filters are the release's formula on their
weight; switched modules keep their originals' parameters and FLOPs."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdet.models.layers import ChannelAttention
from mmengine.analysis import FlopAnalyzer
from mmengine.registry import MODELS
from mmpretrain.models.backbones import SEResNet
from mmpretrain.models.utils import SELayer
from scipy.fft import dctn

from mmfca.models import (AblationSqueeze, CBAMChannelAttention, ECALayer,
                          MultiSpectralChannelAttention, MultiSpectralSELayer,
                          MultiSpectralSEResNet, MultiSpectralSqueeze,
                          use_multi_spectral_squeeze)
from mmfca.models.layers.dct import (channel_groups, dct_filters,
                                     get_grid_freqs, scale_freqs)
from mmfca.models.layers.dct_squeeze import cached_fca_filters
from mmfca.testing import release_squeeze

DC = dict(freq_sel_method='top1')  # (0, 0) only, 'mean' by default


def randomized(module, seed=0):
    torch.manual_seed(seed)
    for p in module.parameters():
        nn.init.normal_(p, std=0.3)
    return module


def same_weights(dst, src):
    dst.load_state_dict(src.state_dict(), strict=True)
    return dst


def flops(module, x):
    module.eval()  # mmpretrain's ResNet.train() returns None
    return FlopAnalyzer(module, (x, )).total()


@pytest.mark.parametrize('size', [(7, 7), (5, 9), (56, 56), (25, 38),
                                  (1, 1)])
def test_dc_term_is_exactly_gap_with_mean_normalisation(size):
    x = torch.randn(2, 32, *size, dtype=torch.float64)
    mean = MultiSpectralSqueeze(32, None, None, 'top1', normalization='mean')
    ortho = MultiSpectralSqueeze(32, None, None, 'top1')
    torch.testing.assert_close(mean(x), x.mean((2, 3)), rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(ortho(x), x.mean((2, 3)) * math.sqrt(
        size[0] * size[1]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('size', [(56, 56), (14, 14), (25, 38), (4, 6)])
@pytest.mark.parametrize('normalization', ['ortho', 'mean'])
def test_input_sized_filter_equals_float64_dct(size, normalization):
    """dct_h=None: each channel group's coefficient of the input's own
    orthonormal 2D DCT at (u * H // 7, v * W // 7), divided by sqrt(HW)
    for 'mean'."""
    h, w = size
    squeeze = MultiSpectralSqueeze(64, None, None, 'top16', normalization)
    x = torch.randn(2, 64, h, w, dtype=torch.float64)
    coeffs = dctn(x.numpy(), type=2, norm='ortho', axes=(2, 3))
    expected = np.empty((2, 64))
    for ch in range(64):
        u, v = get_grid_freqs('top16')[ch // 4]
        expected[:, ch] = coeffs[:, ch, u * h // 7, v * w // 7]
    if normalization == 'mean':
        expected /= math.sqrt(h * w)
    torch.testing.assert_close(squeeze(x), torch.from_numpy(expected),
                               rtol=1e-12, atol=1e-12)
    if (h, w) == (56, 56):  # FcaNet's stage-1 frequencies
        fixed = MultiSpectralSqueeze(64, 56, 56, 'top16', normalization)
        torch.testing.assert_close(squeeze(x), fixed(x), rtol=1e-12,
                                   atol=1e-12)


def test_squeeze_is_registered_and_keeps_dims():
    squeeze = MODELS.build(dict(type='MultiSpectralSqueeze', in_channels=16,
                                dct_h=None, dct_w=None, keepdim=True))
    assert squeeze(torch.randn(3, 16, 9, 9)).shape == (3, 16, 1, 1)
    assert dict(squeeze.named_parameters()) == {}
    assert squeeze.state_dict() == {}  # nothing stored when it follows
    # 0.1.0's configs name it MultiSpectralDCT
    assert type(MODELS.build(dict(type='MultiSpectralDCT',
                                  in_channels=16))) is MultiSpectralSqueeze


def test_filters_cached_per_size_and_shared_between_layers():
    """One filter computation per (frequencies, filter size, input size,
    dtype, device), shared by squeezes of any width with equal groups."""
    cached_fca_filters.cache_clear()
    a = MultiSpectralSqueeze(32, 7, 7)
    b = MultiSpectralSqueeze(64, 7, 7)  # same filters, other width
    a(torch.randn(1, 32, 9, 9))
    b(torch.randn(1, 64, 9, 9))
    assert cached_fca_filters.cache_info()[:2] == (1, 1)  # hits, misses
    a(torch.randn(1, 32, 10, 9))
    a(torch.randn(1, 32, 10, 9).double())
    assert cached_fca_filters.cache_info()[:2] == (1, 3)
    uneven = MultiSpectralSqueeze(40, 7, 7)  # per-channel filters
    uneven(torch.randn(1, 40, 9, 9))
    assert cached_fca_filters.cache_info()[:2] == (1, 4)
    assert cached_fca_filters.cache_info().maxsize > 0


def test_the_release_layout_is_stored_and_other_filters_refused():
    """``weight`` is the release's (C, dct_h, dct_w) buffer, frequency k on
    channel group k; filters from a checkpoint must be that DCT."""
    squeeze = MultiSpectralSqueeze(54, 14, 14)
    bank = squeeze.weight
    sizes = channel_groups(54, 16)
    starts = [sum(sizes[:k]) for k in range(16)]
    grid = get_grid_freqs('top16')
    for k, (start, size) in enumerate(zip(starts, sizes)):
        expected = dct_filters(14, 14, scale_freqs(grid[k:k + 1], 14, 14))
        torch.testing.assert_close(bank[start:start + size],
                                   expected.float().expand(size, 14, 14))
    assert dict(squeeze.named_parameters()) == {}
    state = squeeze.state_dict()
    state['weight'] = torch.randn(54, 14, 14)
    with pytest.raises(ValueError, match='not the fixed DCT filter'):
        squeeze.load_state_dict(state)


@pytest.mark.parametrize('learnable', [False, True])
@pytest.mark.parametrize('init', ['dct', 'random'])
def test_ablation_filters_are_the_release_formula_on_their_weight(
        learnable, init):
    """AblationSqueeze: the release's pool-then-filter on its own ``weight``
    (a parameter when learnable, gradients reaching it), initialised with
    the DCT or with unit-norm random filters; any filters load."""
    torch.manual_seed(0)
    squeeze = AblationSqueeze(32, 7, 7, 'top16', learnable_filter=learnable,
                              filter_init=init)
    dct = MultiSpectralSqueeze(32, 7, 7, 'top16').weight
    weight = squeeze.weight
    assert isinstance(weight, nn.Parameter) == learnable
    assert f'learnable_filter={learnable}, filter_init={init!r}' in repr(
        squeeze)
    if init == 'dct':
        torch.testing.assert_close(weight.detach(), dct)
    else:
        torch.testing.assert_close(weight.detach().flatten(1).norm(dim=1),
                                   torch.ones(32))
        assert not torch.allclose(weight.detach(), dct, atol=1e-2)
    x = torch.randn(2, 32, 15, 11)
    y = squeeze(x)
    torch.testing.assert_close(y, release_squeeze(x, weight.detach()),
                               rtol=1e-5, atol=1e-5)
    if learnable:
        y.square().sum().backward()
        assert weight.grad.abs().sum() > 0
    other = {'weight': torch.randn(32, 7, 7)}
    squeeze.load_state_dict(other)
    torch.testing.assert_close(squeeze.weight.detach(), other['weight'])


@pytest.mark.parametrize('cls,kwargs,match', [
    (MultiSpectralSqueeze, dict(normalization='l2'),
     r"'l2'.*\('ortho', 'mean'\)"),
    (AblationSqueeze, dict(dct_h=None, dct_w=None, learnable_filter=True),
     r'fixed dct_h'),
    (AblationSqueeze, dict(filter_init='gauss'),
     r"filter_init 'gauss'.*\('dct', 'random'\)"),
    (MultiSpectralSqueeze, dict(freq_sel_method='top3'), r"'top3'"),
    (MultiSpectralSqueeze, dict(in_channels=0), r'in_channels=0'),
])
def test_bad_squeeze_arguments_are_named(cls, kwargs, match):
    args = dict(in_channels=32, dct_h=7, dct_w=7)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        cls(**args)


def eca_formula(module, x):
    """ECA-Net from its definition: GAP, 1D conv across channels, sigmoid."""
    y = x.mean((2, 3))[:, None]  # (N, 1, C)
    k = module.conv.weight.shape[-1]
    att = torch.sigmoid(torch.nn.functional.conv1d(
        y, module.conv.weight, padding=k // 2))
    return x * att.view(*x.shape[:2], 1, 1)


def cbam_formula(module, x):
    """CBAM's channel branch: shared MLP on avg and max pooling."""
    mlp = module.mlp
    avg = mlp(x.mean((2, 3), keepdim=True))
    mx = mlp(x.amax((2, 3), keepdim=True))
    return x * torch.sigmoid(avg + mx)


# (GAP original, its switched version given squeeze=...)
SWITCHES = {
    'mmpretrain SELayer': (lambda: SELayer(64, ratio=4),
                           lambda sq: MultiSpectralSELayer(64, ratio=4,
                                                           squeeze=sq)),
    'mmdet ChannelAttention': (
        lambda: ChannelAttention(64),
        lambda sq: MultiSpectralChannelAttention(64, squeeze=sq)),
    'ECA': (lambda: ECALayer(64), lambda sq: ECALayer(64, squeeze=sq)),
    'CBAM channel': (lambda: CBAMChannelAttention(64, 4),
                     lambda sq: CBAMChannelAttention(64, 4, squeeze=sq)),
}


@pytest.mark.parametrize('name', sorted(SWITCHES))
@pytest.mark.parametrize('size', [(7, 7), (14, 14), (56, 56), (25, 38)])
def test_dc_setting_equals_the_gap_original(name, size):
    make_gap, make_switched = SWITCHES[name]
    original = randomized(make_gap()).eval()
    switched = same_weights(make_switched(DC), original).eval()
    x = torch.randn(2, 64, *size)
    with torch.no_grad():
        torch.testing.assert_close(switched(x), original(x), rtol=1e-5,
                                   atol=1e-6)
        # top16 really changes the squeeze
        multi = same_weights(make_switched({}), original).eval()
        assert not torch.allclose(multi(x), original(x), atol=1e-4)


@pytest.mark.parametrize('name', sorted(SWITCHES))
def test_parameters_and_flops_are_the_gap_originals(name):
    make_gap, make_switched = SWITCHES[name]
    original, switched = make_gap(), make_switched({})
    assert [(k, v.shape) for k, v in original.named_parameters()] == \
        [(k, v.shape) for k, v in switched.named_parameters()]
    for size in ((7, 7), (56, 56), (25, 38)):
        x = torch.randn(1, 64, *size)
        assert flops(switched, x) == flops(original, x) > 0


def test_eca_and_cbam_are_their_papers_modules():
    x = torch.randn(2, 256, 9, 11)
    eca = randomized(ECALayer(256)).eval()
    assert eca.conv.kernel_size == (5, )  # |log2(256) + 1| / 2 -> 4 -> 5
    assert ECALayer(64).conv.kernel_size == (3, )
    cbam = randomized(CBAMChannelAttention(256)).eval()
    with torch.no_grad():
        torch.testing.assert_close(eca(x), eca_formula(eca, x))
        torch.testing.assert_close(cbam(x), cbam_formula(cbam, x))
    with pytest.raises(ValueError, match='kernel_size=4'):
        ECALayer(64, kernel_size=4)


def test_seresnet_switch_keeps_names_params_flops_and_dc_output():
    original = SEResNet(50)
    original.init_weights()
    switched = same_weights(MultiSpectralSEResNet(50, squeeze=DC), original)
    original.eval(), switched.eval()  # mmpretrain's train() returns None
    assert list(original.state_dict()) == list(switched.state_dict())
    assert sum(p.numel() for p in switched.parameters()) == \
        sum(p.numel() for p in original.parameters())
    x = torch.randn(1, 3, 64, 64)
    assert flops(switched, x) == flops(original, x)
    with torch.no_grad():
        torch.testing.assert_close(switched(x), original(x), rtol=1e-4,
                                   atol=1e-5)
    multi = MultiSpectralSEResNet(50)
    squeezes = [m.se_layer.global_avgpool for m in multi.modules()
                if hasattr(m, 'se_layer')]
    assert len(squeezes) == 16
    assert all(isinstance(s, MultiSpectralSqueeze) and s.dct_size is None
               and s.normalization == 'mean'
               and s.grid_freqs == tuple(get_grid_freqs('top16'))
               for s in squeezes)


def test_switch_reaches_nested_modules_and_counts_them():
    model = nn.Sequential(SELayer(32), nn.Sequential(ChannelAttention(16)),
                          nn.Conv2d(3, 3, 1))
    assert use_multi_spectral_squeeze(model, dict(dct_h=7, dct_w=7)) == 2
    assert model[0].global_avgpool.in_channels == 32
    assert model[1][0].global_avgpool.dct_h == 7


def test_training_step_through_switched_modules():
    for make in (lambda: MultiSpectralSELayer(32), lambda: ECALayer(
            32, squeeze={}), lambda: CBAMChannelAttention(32, squeeze={})):
        module = make().train()
        x = torch.randn(2, 32, 10, 12, requires_grad=True)
        module(x).square().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert all(p.grad is not None for p in module.parameters())


# MMPretrain's own SELayer cases (its tests/test_models/test_utils/
# test_se.py): same inputs and assertions, on the switched layer, and the
# parent's numbers checked alongside.
@pytest.mark.parametrize('shape,kwargs,squeeze_channels', [
    ((4, 64, 112, 112), dict(), 8),
    ((4, 128, 112, 112), dict(ratio=4), 32),
    ((1, 54, 76, 103), dict(ratio=4), 16),  # 54 not divisible by ratio
    ((1, 54, 76, 103), dict(ratio=4, divisor=2), 14),
    ((1, 128, 56, 56), dict(squeeze_channels=25), 25),
    ((1, 128, 56, 56), dict(squeeze_channels=13, ratio=4, divisor=8), 13),
    ((4, 128, 56, 56),
     dict(squeeze_channels=25,
          act_cfg=(dict(type='ReLU'), dict(type='HSigmoid'))), 25),
])
def test_mmpretrain_selayer_cases(shape, kwargs, squeeze_channels):
    x = torch.randn(shape)
    for layer in (SELayer(shape[1], **kwargs),
                  MultiSpectralSELayer(shape[1], **kwargs)):
        assert layer.conv1.out_channels == squeeze_channels
        assert layer.conv2.in_channels == squeeze_channels
        assert layer(x).shape == torch.Size(shape)


def test_mmpretrain_selayer_argument_checks_are_kept():
    for kwargs in (dict(squeeze_channels='32'), dict(squeeze_channels=-1),
                   dict(act_cfg=(dict(type='ReLU'), dict(type='Sigmoid'),
                                 dict(type='ReLU')))):
        with pytest.raises(AssertionError):
            MultiSpectralSELayer(16, **kwargs)


@pytest.mark.parametrize('arch', ['small', 'small_075', 'small_050', 'large'])
def test_mobilenet_v3_every_width_with_the_switch(arch):
    """MobileNetV3's SE widths (16 ... 960, e.g. 72 and 120, which 16
    frequencies do not divide) all take the switch; with (0, 0) alone the
    network is the GAP original, with top16 it differs, and it trains."""
    from mmpretrain.models.backbones import MobileNetV3
    original = MobileNetV3(arch)
    original.init_weights()
    num_se = sum(isinstance(m, SELayer) for m in original.modules())
    widths = sorted({m.conv1.conv.in_channels for m in original.modules()
                     if isinstance(m, SELayer)})
    assert num_se > 0 and any(w % 16 for w in widths)
    dc, multi = MobileNetV3(arch), MobileNetV3(arch)
    assert use_multi_spectral_squeeze(dc, DC) == num_se
    assert use_multi_spectral_squeeze(multi, {}) == num_se
    for model in (dc, multi):
        model.load_state_dict(original.state_dict())
    x = torch.randn(2, 3, 224, 224)
    for model in (original, dc, multi):
        model.eval()
    with torch.no_grad():
        ref = original(x)[-1]
        size = ref.abs().max()  # the initialised network's outputs are ~1e-6
        torch.testing.assert_close(dc(x)[-1], ref, rtol=1e-4, atol=1e-5 * size)
        assert (multi(x)[-1] - ref).abs().max() > 1e-4 * size
    multi.train()
    multi(x)[-1].square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in multi.parameters()
               if p.grad is not None)
