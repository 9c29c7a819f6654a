"""MMDetection's own ResNet / BasicBlock test cases
(tests/test_models/test_backbones/test_resnet.py of MMDetection 3.3) with
``FcaNet`` for ``ResNet`` and ``FcaBasicBlock`` for ``BasicBlock``: same
inputs, same assertions. Where MMDetection builds ``base_channels=1`` or
``2`` (4 or 8 channels in stage 1), the FCA layers take 4 frequencies and
reduction 4 (``NARROW``), as a 16-frequency, reduction-16 attention needs
at least 16 channels; ``ResNetV1d`` is ``deep_stem=True, avg_down=True``.
The one intended difference: FcaBasicBlock accepts plugins (MMDetection's
BasicBlock asserts there are none)."""
import pytest
import torch
from mmcv.ops import DeformConv2dPack  # noqa: F401  (registers DCN)
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from torch.nn import GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm

from _helpers.backbone_checks import (all_zeros, check_norm_state, is_block,
                                      is_norm)
from mmfca.models import FcaBasicBlock, FcaNet, InvalidDepthError

NARROW = dict(reduction=4, freq_sel_method='top4')


def fcanet_v1d(**kwargs):
    """MMDetection's ResNetV1d, as FcaNet."""
    return FcaNet(deep_stem=True, avg_down=True, **kwargs)


def test_invalid_depth_is_a_key_error_and_a_value_error():
    with pytest.raises(KeyError):
        # ResNet depth should be in [18, 34, 50, 101, 152]
        FcaNet(20)
    with pytest.raises(ValueError) as err:
        FcaNet(20)
    assert isinstance(err.value, InvalidDepthError)
    # the message as written, not KeyError's quoted repr
    assert str(err.value) == ('Unknown FcaNet depth 20; allowed: '
                              '[18, 34, 50, 101, 152].')


def test_basic_block():
    with pytest.raises(AssertionError):
        # Not implemented yet.
        dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
        FcaBasicBlock(64, 64, dcn=dcn)

    # MMDetection's BasicBlock refuses every plugin; FcaBasicBlock refuses
    # the positions it does not have
    with pytest.raises(ValueError, match="'after_conv3'.*after_conv1"):
        plugins = [
            dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                 position='after_conv3')
        ]
        FcaBasicBlock(64, 64, plugins=plugins)

    # test BasicBlock structure and forward
    block = FcaBasicBlock(64, 64)
    assert block.conv1.in_channels == 64
    assert block.conv1.out_channels == 64
    assert block.conv1.kernel_size == (3, 3)
    assert block.conv2.in_channels == 64
    assert block.conv2.out_channels == 64
    assert block.conv2.kernel_size == (3, 3)
    x = torch.randn(1, 64, 56, 56)
    x_out = block(x)
    assert x_out.shape == torch.Size([1, 64, 56, 56])

    # Test BasicBlock with checkpoint forward
    block = FcaBasicBlock(64, 64, with_cp=True)
    assert block.with_cp
    x = torch.randn(1, 64, 56, 56)
    x_out = block(x)
    assert x_out.shape == torch.Size([1, 64, 56, 56])


def test_basic_block_plugins_as_in_mmdets_bottleneck():
    """MMDetection's Bottleneck plugin cases, at FcaBasicBlock's positions
    (its after_conv2 is the Bottleneck's after_conv3: the branch output)."""
    with pytest.raises(AssertionError):
        # Need to specify different postfix to avoid duplicate plugin name
        plugins = [
            dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                 position='after_conv2'),
            dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                 position='after_conv2')
        ]
        FcaBasicBlock(64, 64, plugins=plugins)

    with pytest.raises(KeyError):
        # Plugin type is not supported
        plugins = [dict(cfg=dict(type='WrongPlugin'), position='after_conv2')]
        FcaBasicBlock(64, 64, plugins=plugins)

    # 1 GeneralizedAttention after conv1, 1 NonLocal2D after conv1,
    # 1 ContextBlock after conv2
    plugins = [
        dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1,
                      num_heads=8, attention_type='0010', kv_stride=2),
             position='after_conv1'),
        dict(cfg=dict(type='NonLocal2d'), position='after_conv1'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
             position='after_conv2')
    ]
    block = FcaBasicBlock(64, 64, plugins=plugins)
    assert block.gen_attention_block.in_channels == 64
    assert block.nonlocal_block.in_channels == 64
    assert block.context_block.in_channels == 64
    x = torch.randn(1, 64, 56, 56)
    x_out = block(x)
    assert x_out.shape == torch.Size([1, 64, 56, 56])

    # 1 ContextBlock after conv1, 2 ContextBlock after conv2
    plugins = [
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=1),
             position='after_conv1'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=2),
             position='after_conv2'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=3),
             position='after_conv2')
    ]
    block = FcaBasicBlock(64, 64, plugins=plugins)
    assert block.context_block1.in_channels == 64
    assert block.context_block2.in_channels == 64
    assert block.context_block3.in_channels == 64
    x = torch.randn(1, 64, 56, 56)
    x_out = block(x)
    assert x_out.shape == torch.Size([1, 64, 56, 56])


def test_basic_block_runs_its_plugins_with_mmdets_bottleneck_methods():
    """Plugins are built and run by MMDetection's own Bottleneck methods;
    names, state-dict keys and the forward order are the block's."""
    assert FcaBasicBlock.make_block_plugins is Bottleneck.make_block_plugins
    assert FcaBasicBlock.forward_plugin is Bottleneck.forward_plugin
    plugins = [
        dict(cfg=dict(type='ContextBlock', ratio=1. / 4, postfix=1),
             position='after_conv1'),
        dict(cfg=dict(type='MultiSpectralAttention', dct_h=7, dct_w=7,
                      **NARROW), position='after_conv2'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 4, postfix=2),
             position='after_conv2')
    ]
    block = FcaBasicBlock(16, 16, plugins=plugins).eval()
    assert block.after_conv1_plugin_names == ['context_block1']
    assert block.after_conv2_plugin_names == ['att', 'context_block2']
    assert [k for k in block.state_dict() if '.' in k and
            k.split('.')[0] not in ('conv1', 'conv2', 'bn1', 'bn2')] == [
        'context_block1.conv_mask.weight', 'context_block1.conv_mask.bias',
        'context_block1.channel_add_conv.0.weight',
        'context_block1.channel_add_conv.0.bias',
        'context_block1.channel_add_conv.1.weight',
        'context_block1.channel_add_conv.1.bias',
        'context_block1.channel_add_conv.3.weight',
        'context_block1.channel_add_conv.3.bias',
        'att.dct_layer.weight', 'att.fc.0.weight', 'att.fc.2.weight',
        'context_block2.conv_mask.weight', 'context_block2.conv_mask.bias',
        'context_block2.channel_add_conv.0.weight',
        'context_block2.channel_add_conv.0.bias',
        'context_block2.channel_add_conv.1.weight',
        'context_block2.channel_add_conv.1.bias',
        'context_block2.channel_add_conv.3.weight',
        'context_block2.channel_add_conv.3.bias'
    ]
    torch.manual_seed(0)
    for p in block.parameters():  # ContextBlock zero-inits its last conv
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        out = block.relu(block.norm1(block.conv1(x)))
        out = block.context_block1(out)
        out = block.context_block2(block.att(block.norm2(block.conv2(out))))
        torch.testing.assert_close(block(x), block.relu(out + x))


def test_resnet_stem():
    # Test default stem_channels
    model = FcaNet(50)
    assert model.stem_channels == 64
    assert model.conv1.out_channels == 64
    assert model.norm1.num_features == 64

    # Test default stem_channels, with base_channels=3
    model = FcaNet(50, base_channels=3, reduction=3, freq_sel_method='top4')
    assert model.stem_channels == 3
    assert model.conv1.out_channels == 3
    assert model.norm1.num_features == 3
    assert model.layer1[0].conv1.in_channels == 3

    # Test stem_channels=3
    model = FcaNet(50, stem_channels=3)
    assert model.stem_channels == 3
    assert model.conv1.out_channels == 3
    assert model.norm1.num_features == 3
    assert model.layer1[0].conv1.in_channels == 3

    # Test stem_channels=3, with base_channels=2
    model = FcaNet(50, stem_channels=3, base_channels=2, **NARROW)
    assert model.stem_channels == 3
    assert model.conv1.out_channels == 3
    assert model.norm1.num_features == 3
    assert model.layer1[0].conv1.in_channels == 3

    # Test V1d stem_channels
    model = fcanet_v1d(depth=50, stem_channels=6)
    model.train()
    assert model.stem[0].out_channels == 3
    assert model.stem[1].num_features == 3
    assert model.stem[3].out_channels == 3
    assert model.stem[4].num_features == 3
    assert model.stem[6].out_channels == 6
    assert model.stem[7].num_features == 6
    assert model.layer1[0].conv1.in_channels == 6


def test_resnet_backbone_arguments():
    with pytest.raises(AssertionError):
        # In ResNet: 1 <= num_stages <= 4
        FcaNet(50, num_stages=0)

    with pytest.raises(AssertionError):
        # len(stage_with_dcn) == num_stages
        dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
        FcaNet(50, dcn=dcn, stage_with_dcn=(True, ))

    with pytest.raises(AssertionError):
        # len(stage_with_plugin) == num_stages
        plugins = [
            dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                 stages=(False, True, True), position='after_conv3')
        ]
        FcaNet(50, plugins=plugins)

    with pytest.raises(AssertionError):
        # In ResNet: 1 <= num_stages <= 4
        FcaNet(50, num_stages=5)

    with pytest.raises(AssertionError):
        # len(strides) == len(dilations) == num_stages
        FcaNet(50, strides=(1, ), dilations=(1, 1), num_stages=3)

    with pytest.raises(TypeError):
        # pretrained must be a string path
        FcaNet(50, pretrained=0)

    with pytest.raises(AssertionError):
        # Style must be in ['pytorch', 'caffe']
        FcaNet(50, style='tensorflow')


def test_norm_eval_and_frozen_stages():
    # Test ResNet50 norm_eval=True
    model = FcaNet(50, norm_eval=True, base_channels=1, **NARROW)
    model.train()
    assert check_norm_state(model.modules(), False)

    # Test ResNet50 with torchvision pretrained weight (not loaded here)
    model = FcaNet(
        depth=50, norm_eval=True, pretrained='torchvision://resnet50')
    model.train()
    assert check_norm_state(model.modules(), False)

    # Test ResNet50 with first stage frozen
    frozen_stages = 1
    model = FcaNet(50, frozen_stages=frozen_stages, base_channels=1,
                   **NARROW)
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

    # Test ResNet50V1d with first stage frozen
    model = fcanet_v1d(depth=50, frozen_stages=frozen_stages,
                       base_channels=2, **NARROW)
    assert len(model.stem) == 9
    model.train()
    assert check_norm_state(model.stem, False)
    for param in model.stem.parameters():
        assert param.requires_grad is False
    for i in range(1, frozen_stages + 1):
        layer = getattr(model, f'layer{i}')
        for mod in layer.modules():
            if isinstance(mod, _BatchNorm):
                assert mod.training is False
        for param in layer.parameters():
            assert param.requires_grad is False


def test_forward_out_indices_with_cp_and_norms():
    # Test ResNet18 forward
    model = FcaNet(18)
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 64, 8, 8])
    assert feat[1].shape == torch.Size([1, 128, 4, 4])
    assert feat[2].shape == torch.Size([1, 256, 2, 2])
    assert feat[3].shape == torch.Size([1, 512, 1, 1])

    # Test ResNet18 with checkpoint forward
    model = FcaNet(18, with_cp=True)
    for m in model.modules():
        if is_block(m):
            assert m.with_cp

    # Test ResNet50 with BatchNorm forward
    model = FcaNet(50, base_channels=1, **NARROW)
    for m in model.modules():
        if is_norm(m):
            assert isinstance(m, _BatchNorm)
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 4, 8, 8])
    assert feat[1].shape == torch.Size([1, 8, 4, 4])
    assert feat[2].shape == torch.Size([1, 16, 2, 2])
    assert feat[3].shape == torch.Size([1, 32, 1, 1])

    # Test ResNet50 with layers 1, 2, 3 out forward
    model = FcaNet(50, out_indices=(0, 1, 2), base_channels=1, **NARROW)
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 3
    assert feat[0].shape == torch.Size([1, 4, 8, 8])
    assert feat[1].shape == torch.Size([1, 8, 4, 4])
    assert feat[2].shape == torch.Size([1, 16, 2, 2])

    # Test ResNet50 with checkpoint forward
    model = FcaNet(50, with_cp=True, base_channels=1, **NARROW)
    for m in model.modules():
        if is_block(m):
            assert m.with_cp
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 4, 8, 8])
    assert feat[1].shape == torch.Size([1, 8, 4, 4])
    assert feat[2].shape == torch.Size([1, 16, 2, 2])
    assert feat[3].shape == torch.Size([1, 32, 1, 1])

    # Test ResNet50 with GroupNorm forward
    model = FcaNet(50, base_channels=4,
                   norm_cfg=dict(type='GN', num_groups=2, requires_grad=True))
    for m in model.modules():
        if is_norm(m):
            assert isinstance(m, GroupNorm)
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 16, 8, 8])
    assert feat[1].shape == torch.Size([1, 32, 4, 4])
    assert feat[2].shape == torch.Size([1, 64, 2, 2])
    assert feat[3].shape == torch.Size([1, 128, 1, 1])


def test_plugins():
    # Test ResNet50 with 1 GeneralizedAttention after conv2, 1 NonLocal2D
    # after conv2, 1 ContextBlock after conv3 in layers 2, 3, 4
    plugins = [
        dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1,
                      num_heads=8, attention_type='0010', kv_stride=2),
             stages=(False, True, True, True), position='after_conv2'),
        dict(cfg=dict(type='NonLocal2d'), position='after_conv2'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
             stages=(False, True, True, False), position='after_conv3')
    ]
    model = FcaNet(50, plugins=plugins, base_channels=8)
    for m in model.layer1.modules():
        if is_block(m):
            assert not hasattr(m, 'context_block')
            assert not hasattr(m, 'gen_attention_block')
            assert m.nonlocal_block.in_channels == 8
    for m in model.layer2.modules():
        if is_block(m):
            assert m.nonlocal_block.in_channels == 16
            assert m.gen_attention_block.in_channels == 16
            assert m.context_block.in_channels == 64
    for m in model.layer3.modules():
        if is_block(m):
            assert m.nonlocal_block.in_channels == 32
            assert m.gen_attention_block.in_channels == 32
            assert m.context_block.in_channels == 128
    for m in model.layer4.modules():
        if is_block(m):
            assert m.nonlocal_block.in_channels == 64
            assert m.gen_attention_block.in_channels == 64
            assert not hasattr(m, 'context_block')
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 32, 8, 8])
    assert feat[1].shape == torch.Size([1, 64, 4, 4])
    assert feat[2].shape == torch.Size([1, 128, 2, 2])
    assert feat[3].shape == torch.Size([1, 256, 1, 1])

    # Test ResNet50 with 1 ContextBlock after conv2, 1 ContextBlock after
    # conv3 in layers 2, 3, 4
    plugins = [
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=1),
             stages=(False, True, True, False), position='after_conv3'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=2),
             stages=(False, True, True, False), position='after_conv3')
    ]
    model = FcaNet(50, plugins=plugins, base_channels=8)
    for m in model.layer1.modules():
        if is_block(m):
            assert not hasattr(m, 'context_block')
            assert not hasattr(m, 'context_block1')
            assert not hasattr(m, 'context_block2')
    for m in model.layer2.modules():
        if is_block(m):
            assert not hasattr(m, 'context_block')
            assert m.context_block1.in_channels == 64
            assert m.context_block2.in_channels == 64
    for m in model.layer3.modules():
        if is_block(m):
            assert not hasattr(m, 'context_block')
            assert m.context_block1.in_channels == 128
            assert m.context_block2.in_channels == 128
    for m in model.layer4.modules():
        if is_block(m):
            assert not hasattr(m, 'context_block')
            assert not hasattr(m, 'context_block1')
            assert not hasattr(m, 'context_block2')
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 32, 8, 8])
    assert feat[1].shape == torch.Size([1, 64, 4, 4])
    assert feat[2].shape == torch.Size([1, 128, 2, 2])
    assert feat[3].shape == torch.Size([1, 256, 1, 1])


@pytest.mark.parametrize('depth', [18, 50])
def test_zero_init_residual(depth):
    # Test ResNet50 zero initialization of residual (and ResNet18's,
    # whose blocks are FcaBasicBlocks)
    narrow = NARROW if depth == 50 else {}
    model = FcaNet(depth, zero_init_residual=True,
                   base_channels=1 if depth == 50 else 64, **narrow)
    model.init_weights()
    blocks = 0
    for m in model.modules():
        if isinstance(m, Bottleneck):
            assert all_zeros(m.norm3)
            blocks += 1
        elif isinstance(m, BasicBlock):
            assert all_zeros(m.norm2)
            blocks += 1
    assert blocks == sum(model.stage_blocks)
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 4
    if depth == 50:
        assert feat[0].shape == torch.Size([1, 4, 8, 8])
        assert feat[3].shape == torch.Size([1, 32, 1, 1])


def test_v1d_forward():
    # Test ResNetV1d forward
    model = fcanet_v1d(depth=50, base_channels=2, **NARROW)
    model.train()
    imgs = torch.randn(1, 3, 32, 32)
    feat = model(imgs)
    assert len(feat) == 4
    assert feat[0].shape == torch.Size([1, 8, 8, 8])
    assert feat[1].shape == torch.Size([1, 16, 4, 4])
    assert feat[2].shape == torch.Size([1, 32, 2, 2])
    assert feat[3].shape == torch.Size([1, 64, 1, 1])


def test_init_cfg():
    with pytest.raises(AssertionError):
        # init_cfg and pretrained cannot be specified at the same time
        FcaNet(50, pretrained='a.pth',
               init_cfg=dict(type='Pretrained', checkpoint='b.pth'))
    # pretrained is turned into a Pretrained init_cfg
    model = FcaNet(50, pretrained='torchvision://resnet50')
    assert model.init_cfg == dict(type='Pretrained',
                                  checkpoint='torchvision://resnet50')
    # the default: Kaiming convs, constant norms
    model = FcaNet(50)
    assert model.init_cfg == [
        dict(type='Kaiming', layer='Conv2d'),
        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
    ]
