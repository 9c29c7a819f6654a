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
                                      is_norm, stages_frozen)
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


@pytest.mark.parametrize('plugins,names', [
    # 1 GeneralizedAttention after conv1, 1 NonLocal2D after conv1,
    # 1 ContextBlock after conv2
    ([dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1,
                    num_heads=8, attention_type='0010', kv_stride=2),
           position='after_conv1'),
      dict(cfg=dict(type='NonLocal2d'), position='after_conv1'),
      dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
           position='after_conv2')],
     ['gen_attention_block', 'nonlocal_block', 'context_block']),
    # 1 ContextBlock after conv1, 2 ContextBlock after conv2
    ([dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=1),
           position='after_conv1'),
      dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=2),
           position='after_conv2'),
      dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=3),
           position='after_conv2')],
     ['context_block1', 'context_block2', 'context_block3']),
])
def test_basic_block_with_plugins(plugins, names):
    block = FcaBasicBlock(64, 64, plugins=plugins)
    for name in names:
        assert getattr(block, name).in_channels == 64
    x_out = block(torch.randn(1, 64, 56, 56))
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


@pytest.mark.parametrize('error,kwargs', [
    (AssertionError, dict(num_stages=0)),  # In ResNet: 1 <= num_stages <= 4
    (AssertionError, dict(num_stages=5)),
    # len(stage_with_dcn) == num_stages
    (AssertionError, dict(dcn=dict(type='DCN', deform_groups=1,
                                   fallback_on_stride=False),
                          stage_with_dcn=(True, ))),
    # len(stage_with_plugin) == num_stages
    (AssertionError, dict(plugins=[
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
             stages=(False, True, True), position='after_conv3')])),
    # len(strides) == len(dilations) == num_stages
    (AssertionError, dict(strides=(1, ), dilations=(1, 1), num_stages=3)),
    (TypeError, dict(pretrained=0)),  # pretrained must be a string path
    (AssertionError, dict(style='tensorflow')),  # pytorch or caffe
])
def test_resnet_backbone_arguments(error, kwargs):
    with pytest.raises(error):
        FcaNet(50, **kwargs)


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
    assert stages_frozen(model, frozen_stages)

    # Test ResNet50V1d with first stage frozen
    model = fcanet_v1d(depth=50, frozen_stages=frozen_stages,
                       base_channels=2, **NARROW)
    assert len(model.stem) == 9
    model.train()
    assert stages_frozen(model, frozen_stages)


GN = dict(type='GN', num_groups=2, requires_grad=True)


@pytest.mark.parametrize('build,widths', [
    (lambda: FcaNet(18), (64, 128, 256, 512)),
    (lambda: FcaNet(18, with_cp=True), (64, 128, 256, 512)),
    (lambda: FcaNet(50, base_channels=1, **NARROW), (4, 8, 16, 32)),
    (lambda: FcaNet(50, out_indices=(0, 1, 2), base_channels=1, **NARROW),
     (4, 8, 16)),
    (lambda: FcaNet(50, with_cp=True, base_channels=1, **NARROW),
     (4, 8, 16, 32)),
    (lambda: FcaNet(50, base_channels=4, norm_cfg=GN), (16, 32, 64, 128)),
    (lambda: fcanet_v1d(depth=50, base_channels=2, **NARROW),
     (8, 16, 32, 64)),
], ids=['r18', 'r18-with-cp', 'r50-bn', 'r50-3-outs', 'r50-with-cp',
        'r50-gn', 'r50-v1d'])
def test_forward_out_indices_with_cp_and_norms(build, widths):
    """ResNet18/50 (and V1d) forward at 32x32: the stage outputs asked
    for, with checkpointed blocks and BatchNorm or GroupNorm as built."""
    model = build()
    norm = GroupNorm if model.norm_cfg['type'] == 'GN' else _BatchNorm
    for m in model.modules():
        if is_block(m):
            assert m.with_cp == model.with_cp
        if is_norm(m):
            assert isinstance(m, norm)
    model.train()
    feat = model(torch.randn(1, 3, 32, 32))
    assert [tuple(f.shape) for f in feat] == [
        (1, c, 8 // 2**i, 8 // 2**i) for i, c in enumerate(widths)]


@pytest.mark.parametrize('plugins,expected', [
    # 1 GeneralizedAttention after conv2, 1 NonLocal2D after conv2, 1
    # ContextBlock after conv3 in layers 2, 3, 4
    ([dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1,
                    num_heads=8, attention_type='0010', kv_stride=2),
           stages=(False, True, True, True), position='after_conv2'),
      dict(cfg=dict(type='NonLocal2d'), position='after_conv2'),
      dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
           stages=(False, True, True, False), position='after_conv3')],
     # per stage: plugin -> in_channels (None: absent)
     [dict(nonlocal_block=8, gen_attention_block=None, context_block=None),
      dict(nonlocal_block=16, gen_attention_block=16, context_block=64),
      dict(nonlocal_block=32, gen_attention_block=32, context_block=128),
      dict(nonlocal_block=64, gen_attention_block=64, context_block=None)]),
    # 1 ContextBlock after conv2, 1 ContextBlock after conv3 in layers 2,
    # 3, 4
    ([dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=1),
           stages=(False, True, True, False), position='after_conv3'),
      dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=2),
           stages=(False, True, True, False), position='after_conv3')],
     [dict(context_block=None, context_block1=None, context_block2=None),
      dict(context_block=None, context_block1=64, context_block2=64),
      dict(context_block=None, context_block1=128, context_block2=128),
      dict(context_block=None, context_block1=None, context_block2=None)]),
])
def test_plugins(plugins, expected):
    model = FcaNet(50, plugins=plugins, base_channels=8)
    for i, names in enumerate(expected):
        for m in getattr(model, f'layer{i + 1}').modules():
            if not is_block(m):
                continue
            for name, channels in names.items():
                if channels is None:
                    assert not hasattr(m, name)
                else:
                    assert getattr(m, name).in_channels == channels
    model.train()
    feat = model(torch.randn(1, 3, 32, 32))
    assert [tuple(f.shape) for f in feat] == [
        (1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2), (1, 256, 1, 1)]


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
