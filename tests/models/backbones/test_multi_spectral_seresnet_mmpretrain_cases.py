"""MMPretrain's own SEResNet / SEResNeXt backbone test cases
(tests/test_models/test_backbones/test_seresnet.py and test_seresnext.py of
MMPretrain 1.2) with ``MultiSpectralSEResNet`` / ``MultiSpectralSEResNeXt``
for theirs: same inputs, same assertions, plus: every SE layer squeezes with
DCT frequencies. Left out: MMPretrain's case that downloads torchvision's
ResNet-50 (no network here)."""
import pytest
import torch
from mmpretrain.models.backbones.seresnet import SEBottleneck
from mmpretrain.models.backbones.seresnext import SEBottleneck as SEBottleneckX
from mmpretrain.models.utils import SELayer
from torch.nn.modules.batchnorm import _BatchNorm

from _helpers.backbone_checks import (all_zeros, check_norm_state, is_block,
                                      is_norm, stages_frozen)
from mmfca.models import MultiSpectralSEResNet, MultiSpectralSEResNeXt


def assert_every_se_layer_switched(model):
    se_layers = [m for m in model.modules() if isinstance(m, SELayer)]
    assert len(se_layers) == sum(model.stage_blocks)
    assert all(type(m.global_avgpool).__name__ == 'MultiSpectralSqueeze'
               for m in se_layers)


@pytest.mark.parametrize('error,kwargs', [
    (KeyError, dict(depth=20)),  # depth in [50, 101, 152]
    (AssertionError, dict(depth=50, num_stages=0)),  # 1 <= num_stages <= 4
    (AssertionError, dict(depth=50, num_stages=5)),
    # len(strides) == len(dilations) == num_stages
    (AssertionError, dict(depth=50, strides=(1, ), dilations=(1, 1),
                          num_stages=3)),
    (AssertionError, dict(depth=50, style='tensorflow')),  # pytorch|caffe
])
def test_seresnet_arguments(error, kwargs):
    with pytest.raises(error):
        MultiSpectralSEResNet(**kwargs)


def test_seresnet_pretrained_must_be_a_path():
    with pytest.raises(TypeError):
        MultiSpectralSEResNet(50).init_weights(pretrained=0)


def test_seresnet_norm_eval_and_frozen_stages():
    # Test SEResNet50 norm_eval=True
    model = MultiSpectralSEResNet(50, norm_eval=True)
    model.init_weights()
    model.train()
    assert check_norm_state(model.modules(), False)

    # Test SEResNet50 with first stage frozen
    frozen_stages = 1
    model = MultiSpectralSEResNet(50, frozen_stages=frozen_stages)
    model.init_weights()
    model.train()
    assert stages_frozen(model, frozen_stages)


# (N, C, H, W) of the four stage outputs at 224x224
STAGES = [(1, 256, 56, 56), (1, 512, 28, 28), (1, 1024, 14, 14),
          (1, 2048, 7, 7)]


@pytest.mark.parametrize('cls,kwargs', [
    (MultiSpectralSEResNet, dict(depth=50, out_indices=(0, 1, 2, 3))),
    (MultiSpectralSEResNet, dict(depth=50, out_indices=(0, 1, 2))),
    (MultiSpectralSEResNet, dict(depth=50, out_indices=(3, ))),
    (MultiSpectralSEResNet, dict(depth=50, out_indices=(0, 1, 2, 3),
                                 with_cp=True)),
    (MultiSpectralSEResNet, dict(depth=50, out_indices=(0, 1, 2, 3),
                                 zero_init_residual=True)),
    (MultiSpectralSEResNeXt, dict(depth=50, groups=32, width_per_group=4,
                                  out_indices=(0, 1, 2, 3))),
    (MultiSpectralSEResNeXt, dict(depth=50, groups=32, width_per_group=4,
                                  out_indices=(3, ))),
], ids=['resnet', 'resnet-3-outs', 'resnet-top-out', 'resnet-with-cp',
        'resnet-zero-init', 'resnext', 'resnext-top-out'])
def test_forward_out_indices_with_cp_zero_init_groups(cls, kwargs):
    """SEResNet50 / SEResNeXt50 (32x4d) forward with BatchNorm: the stage
    outputs asked for, every SE layer switched, and each option's effect
    (checkpointed blocks, zero-initialised residual norms, grouped
    convolutions)."""
    model = cls(**kwargs)
    for m in model.modules():
        if is_norm(m):
            assert isinstance(m, _BatchNorm)
        if is_block(m):
            assert m.with_cp == kwargs.get('with_cp', False)
        if isinstance(m, SEBottleneckX):
            assert m.conv2.groups == 32
    assert_every_se_layer_switched(model)
    model.init_weights()
    if kwargs.get('zero_init_residual'):
        assert all(all_zeros(m.norm3) for m in model.modules()
                   if isinstance(m, SEBottleneck))
    model.train()
    feat = model(torch.randn(1, 3, 224, 224))
    assert [tuple(f.shape) for f in feat] == \
        [STAGES[i] for i in kwargs['out_indices']]


def test_seresnext_depth_is_checked():
    with pytest.raises(KeyError):
        # SEResNeXt depth should be in [50, 101, 152]
        MultiSpectralSEResNeXt(depth=18)


def test_squeeze_default_is_none_and_means_the_switch_defaults():
    """No shared mutable default; ``squeeze=None`` is the switch's
    defaults, the same squeeze as ``squeeze=dict()``."""
    import inspect
    for cls in (MultiSpectralSEResNet, MultiSpectralSEResNeXt):
        sig = inspect.signature(cls.__init__)
        assert sig.parameters['squeeze'].default is None
    default = MultiSpectralSEResNet(50)
    empty = MultiSpectralSEResNet(50, squeeze=dict())
    for name in ('layer1.0', 'layer4.2'):
        a = default.get_submodule(name).se_layer.global_avgpool
        b = empty.get_submodule(name).se_layer.global_avgpool
        assert repr(a) == repr(b)
        x = torch.randn(2, a.channels if hasattr(a, 'channels') else
                        default.get_submodule(name).out_channels, 7, 7)
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
