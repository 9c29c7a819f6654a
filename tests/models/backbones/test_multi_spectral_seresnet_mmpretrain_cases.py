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
                                      is_norm)
from mmfca.models import MultiSpectralSEResNet, MultiSpectralSEResNeXt


def assert_every_se_layer_switched(model):
    se_layers = [m for m in model.modules() if isinstance(m, SELayer)]
    assert len(se_layers) == sum(model.stage_blocks)
    assert all(type(m.global_avgpool).__name__ == 'MultiSpectralSqueeze'
               for m in se_layers)


def test_seresnet_arguments():
    with pytest.raises(KeyError):
        # SEResNet depth should be in [50, 101, 152]
        MultiSpectralSEResNet(20)

    with pytest.raises(AssertionError):
        # In SEResNet: 1 <= num_stages <= 4
        MultiSpectralSEResNet(50, num_stages=0)

    with pytest.raises(AssertionError):
        # In SEResNet: 1 <= num_stages <= 4
        MultiSpectralSEResNet(50, num_stages=5)

    with pytest.raises(AssertionError):
        # len(strides) == len(dilations) == num_stages
        MultiSpectralSEResNet(50, strides=(1, ), dilations=(1, 1),
                              num_stages=3)

    with pytest.raises(TypeError):
        # pretrained must be a string path
        model = MultiSpectralSEResNet(50)
        model.init_weights(pretrained=0)

    with pytest.raises(AssertionError):
        # Style must be in ['pytorch', 'caffe']
        MultiSpectralSEResNet(50, style='tensorflow')


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
    assert model.norm1.training is False
    for layer in [model.conv1, model.norm1]:
        for param in layer.parameters():
            assert param.requires_grad is False
    for i in range(1, frozen_stages + 1):
        layer = getattr(model, f'layer{i}')
        for mod in layer.modules():
            if isinstance(mod, _BatchNorm):
                assert mod.training is False
        for param in layer.parameters():
            assert param.requires_grad is False


def test_seresnet_forward_out_indices_with_cp_zero_init():
    # Test SEResNet50 with BatchNorm forward
    model = MultiSpectralSEResNet(50, out_indices=(0, 1, 2, 3))
    for m in model.modules():
        if is_norm(m):
            assert isinstance(m, _BatchNorm)
    assert_every_se_layer_switched(model)
    model.init_weights()
    model.train()
    imgs = torch.randn(1, 3, 224, 224)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 256, 56, 56])
    assert feat[1].shape == torch.Size([1, 512, 28, 28])
    assert feat[2].shape == torch.Size([1, 1024, 14, 14])
    assert feat[3].shape == torch.Size([1, 2048, 7, 7])

    # Test SEResNet50 with layers 1, 2, 3 out forward
    model = MultiSpectralSEResNet(50, out_indices=(0, 1, 2))
    model.init_weights()
    model.train()
    imgs = torch.randn(1, 3, 224, 224)
    feat = model(imgs)
    assert len(feat) == 3
    assert feat[0].shape == torch.Size([1, 256, 56, 56])
    assert feat[1].shape == torch.Size([1, 512, 28, 28])
    assert feat[2].shape == torch.Size([1, 1024, 14, 14])

    # Test SEResNet50 with layers 3 (top feature maps) out forward
    model = MultiSpectralSEResNet(50, out_indices=(3, ))
    model.init_weights()
    model.train()
    imgs = torch.randn(1, 3, 224, 224)
    feat = model(imgs)
    assert len(feat) == 1
    assert feat[0].shape == torch.Size([1, 2048, 7, 7])

    # Test SEResNet50 with checkpoint forward
    model = MultiSpectralSEResNet(50, out_indices=(0, 1, 2, 3), with_cp=True)
    for m in model.modules():
        if is_block(m):
            assert m.with_cp
    model.init_weights()
    model.train()
    imgs = torch.randn(1, 3, 224, 224)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 256, 56, 56])
    assert feat[1].shape == torch.Size([1, 512, 28, 28])
    assert feat[2].shape == torch.Size([1, 1024, 14, 14])
    assert feat[3].shape == torch.Size([1, 2048, 7, 7])

    # Test SEResNet50 zero initialization of residual
    model = MultiSpectralSEResNet(50, out_indices=(0, 1, 2, 3),
                                  zero_init_residual=True)
    model.init_weights()
    for m in model.modules():
        if isinstance(m, SEBottleneck):
            assert all_zeros(m.norm3)
    model.train()
    imgs = torch.randn(1, 3, 224, 224)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 256, 56, 56])
    assert feat[1].shape == torch.Size([1, 512, 28, 28])
    assert feat[2].shape == torch.Size([1, 1024, 14, 14])
    assert feat[3].shape == torch.Size([1, 2048, 7, 7])


def test_seresnext():
    with pytest.raises(KeyError):
        # SEResNeXt depth should be in [50, 101, 152]
        MultiSpectralSEResNeXt(depth=18)

    # Test SEResNeXt with group 32, width_per_group 4
    model = MultiSpectralSEResNeXt(depth=50, groups=32, width_per_group=4,
                                   out_indices=(0, 1, 2, 3))
    for m in model.modules():
        if isinstance(m, SEBottleneckX):
            assert m.conv2.groups == 32
    assert_every_se_layer_switched(model)
    model.init_weights()
    model.train()
    imgs = torch.randn(1, 3, 224, 224)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 256, 56, 56])
    assert feat[1].shape == torch.Size([1, 512, 28, 28])
    assert feat[2].shape == torch.Size([1, 1024, 14, 14])
    assert feat[3].shape == torch.Size([1, 2048, 7, 7])

    # Test SEResNeXt with group 32, width_per_group 4 and layers 3 out
    # forward
    model = MultiSpectralSEResNeXt(depth=50, groups=32, width_per_group=4,
                                   out_indices=(3, ))
    for m in model.modules():
        if isinstance(m, SEBottleneckX):
            assert m.conv2.groups == 32
    model.init_weights()
    model.train()
    imgs = torch.randn(1, 3, 224, 224)
    feat = model(imgs)
    assert len(feat) == 1
    assert feat[0].shape == torch.Size([1, 2048, 7, 7])


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
