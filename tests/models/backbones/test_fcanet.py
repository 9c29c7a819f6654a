import pytest
import torch
from mmdet.models.backbones import ResNet
from torch.nn.modules.batchnorm import _BatchNorm

from mmfca.models import FcaNet, MultiSpectralAttention
from mmfca.models.backbones import STAGE_DCT_SIZES


def all_atts(model):
    return [m for m in model.modules()
            if isinstance(m, MultiSpectralAttention)]


@pytest.mark.parametrize('depth,blocks,expansion', [
    (18, (2, 2, 2, 2), 1), (34, (3, 4, 6, 3), 1), (50, (3, 4, 6, 3), 4),
    (101, (3, 4, 23, 3), 4), (152, (3, 8, 36, 3), 4)])
def test_every_depth_channels_strides_and_fca_per_block(
        depth, blocks, expansion):
    model = FcaNet(depth).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (1, 64 * expansion * 2**i, 16 // 2**i, 24 // 2**i) for i in range(4)]
    for i, n in enumerate(blocks):
        layer = getattr(model, f'layer{i + 1}')
        assert len(layer) == n
        for block in layer:
            # one FCA per block, named as in the released checkpoints
            assert isinstance(block.att, MultiSpectralAttention)
            assert block.att.dct_layer.dct_h == STAGE_DCT_SIZES[i]
            assert block.att.in_channels == 64 * 2**i * expansion
    assert len(all_atts(model)) == sum(blocks)


def test_fcanet50_classifier_has_the_published_parameter_count():
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier

    # as in an MMPretrain config (default_scope='mmpretrain'), whatever
    # scope earlier tests' runners left current
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = ImageClassifier(
            backbone=dict(type='FcaNet', depth=50, out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000,
                      in_channels=2048))
    assert sum(p.numel() for p in model.parameters()) == 28_071_976


def test_complexity_analysis_counts_every_fc_of_fcanet50():
    """mmengine's ``get_model_complexity_info`` (what MMDetection's and
    MMPretrain's get_flops.py print) runs FcaNet-50's FCs as modules: no
    "never called" warning, each FC's FLOPs (C x C/16 multiply-adds at
    batch 1) in the per-module statistics, and the totals at 224x224 (SE's
    excitation plus the squeeze counted like GAP: 4.128 GFLOPs, against
    SE-ResNet-50's 4.117)."""
    import logging

    from mmengine.analysis import FlopAnalyzer, get_model_complexity_info
    from mmengine.logging import MMLogger

    model = FcaNet(50).eval()
    logged = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        with torch.no_grad():
            info = get_model_complexity_info(model, (3, 224, 224),
                                             show_table=False)
    finally:
        logger.removeHandler(handler)
    assert logged and not [m for m in logged if 'never called' in m]
    assert round(info['flops'] / 1e9, 3) == 4.128
    assert info['params'] == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        by_module = FlopAnalyzer(model, torch.randn(1, 3, 224, 224)) \
            .unsupported_ops_warnings(False).by_module()
    for name, att in model.named_modules():
        if isinstance(att, MultiSpectralAttention):
            c = att.in_channels
            assert by_module[f'{name}.fc.0'] == by_module[f'{name}.fc.2'] \
                == c * (c // 16), name


def test_fca_sits_after_last_norm_before_identity_add():
    """The FCA's input is exactly the branch after its last norm, and the
    block's output is relu(FCA output + identity)."""
    torch.manual_seed(0)
    for depth, last_norm in ((18, 'bn2'), (50, 'bn3')):
        model = FcaNet(depth).eval()
        block = model.layer2[0]
        seen = {}

        def keep(name, tensor):  # returns None: hooks must not replace
            seen[name] = tensor.clone()

        getattr(block, last_norm).register_forward_hook(
            lambda m, i, o: keep('norm', o))
        block.att.register_forward_pre_hook(lambda m, i: keep('att', i[0]))
        block.att.register_forward_hook(lambda m, i, o: keep('att_out', o))
        x = torch.randn(1, block.conv1.in_channels, 16, 16)
        with torch.no_grad():
            out = block(x)
            identity = block.downsample(x)
        torch.testing.assert_close(seen['att'], seen['norm'])
        torch.testing.assert_close(out, torch.relu(seen['att_out'] + identity))


def test_equals_mmdet_resnet_with_four_plugin_entries():
    """FcaNet-50 is MMDetection's ResNet plus one plugin entry per stage."""
    plugins = [
        dict(cfg=dict(type='MultiSpectralAttention', dct_h=s, dct_w=s),
             position='after_conv3',
             stages=tuple(j == i for j in range(4)))
        for i, s in enumerate((56, 28, 14, 7))
    ]
    torch.manual_seed(0)
    ours = FcaNet(50)
    ours.init_weights()
    theirs = ResNet(50, plugins=plugins)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    theirs.eval()  # MMDetection's ResNet.train() returns None: no chaining
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(ours.eval()(x), theirs(x)):
            torch.testing.assert_close(a, b)


def test_user_plugins_follow_fca():
    """A user's plugin runs on the FCA's output, in the stages it names."""
    model = FcaNet(
        50,
        plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                      position='after_conv3', stages=(False, False, True,
                                                      True))])
    assert model.layer3[0].after_conv3_plugin_names == [
        'att', 'context_block']
    assert model.layer1[0].after_conv3_plugin_names == ['att']
    block = model.eval().layer3[0]
    torch.manual_seed(0)
    for p in block.context_block.parameters():  # its last conv is zero
        torch.nn.init.normal_(p, std=0.1)
    seen = {}
    block.att.register_forward_hook(
        lambda m, i, o: seen.update(att_out=o.clone()))
    block.context_block.register_forward_hook(
        lambda m, i, o: seen.update(cb_in=i[0].clone(), cb_out=o.clone()))
    x = torch.randn(1, 512, 8, 8)
    with torch.no_grad():
        out = block(x)
        identity = block.downsample(x)
    torch.testing.assert_close(seen['cb_in'], seen['att_out'])
    assert not torch.allclose(seen['cb_out'], seen['cb_in'])
    torch.testing.assert_close(out, torch.relu(seen['cb_out'] + identity))


def test_train_returns_self_and_frozen_stages_norm_eval():
    model = FcaNet(50, frozen_stages=1, norm_eval=True)
    assert model.train() is model
    assert model.eval() is model and not model.training
    model.train()
    for module in (model.conv1, model.bn1, model.layer1):
        assert all(not p.requires_grad for p in module.parameters())
    assert not model.bn1.training
    assert not any(m.training for m in model.layer1.modules())
    assert all(p.requires_grad for p in model.layer2.parameters())
    # norm_eval: every BN in eval mode, others in training mode
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))
    assert model.layer2[0].att.training
    # module by module, the same modes as MMDetection's ResNet
    ref = ResNet(50, frozen_stages=1, norm_eval=True)
    ref.train()
    ours = dict(model.named_modules())
    assert all(ours[name].training == m.training
               for name, m in ref.named_modules())


def test_norm_eval_false_trains_bn():
    model = FcaNet(18, norm_eval=False).train()
    assert all(m.training for m in model.modules())


def test_with_cp_gives_same_output_and_gradients():
    torch.manual_seed(0)
    for depth in (18, 50):
        plain = FcaNet(depth, norm_eval=False)
        plain.init_weights()
        ckpt = FcaNet(depth, with_cp=True, norm_eval=False)
        ckpt.load_state_dict(plain.state_dict())
        x = torch.randn(2, 3, 64, 64)
        outs = []
        for model in (plain, ckpt):
            xi = x.clone().requires_grad_()
            out = model.train()(xi)
            sum(o.sum() for o in out).backward()
            outs.append((out, xi.grad, model.layer2[0].att.fc[0].weight.grad))
        for a, b in zip(*outs):
            for ta, tb in zip(a if isinstance(a, tuple) else (a, ),
                              b if isinstance(b, tuple) else (b, )):
                torch.testing.assert_close(ta, tb, rtol=1e-4, atol=1e-5)


def test_zero_init_residual_for_both_block_kinds():
    for depth, norm in ((18, 'bn2'), (50, 'bn3')):
        model = FcaNet(depth)
        model.init_weights()
        for layer in (model.layer1, model.layer4):
            for block in layer:
                assert torch.all(getattr(block, norm).weight == 0)
        assert torch.all(model.bn1.weight == 1)


def test_dcn_stages_use_mmcv_deform_conv():
    from mmcv.ops import ModulatedDeformConv2dPack
    model = FcaNet(
        50,
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, False, True, True)).eval()
    assert isinstance(model.layer3[0].conv2, ModulatedDeformConv2dPack)
    assert not isinstance(model.layer2[0].conv2, ModulatedDeformConv2dPack)
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert outs[3].shape == (1, 2048, 2, 2)


def test_strides_dilations_out_indices_deep_stem():
    model = FcaNet(
        50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), deep_stem=True,
        out_indices=(1, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 512, 8, 8),
                                              (1, 2048, 8, 8)]
    # filter sizes stay per stage; the 8x8 maps are pooled to them
    assert model.layer4[0].att.dct_layer.dct_h == 7


def test_pretrained_init_cfg_with_prefix(tmp_path):
    src = FcaNet(18)
    src.init_weights()
    path = tmp_path / 'det.pth'
    torch.save({'state_dict': {f'backbone.{k}': v
                               for k, v in src.state_dict().items()}}, path)
    model = FcaNet(18, init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                     prefix='backbone.'))
    model.init_weights()
    for k, v in src.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_unknown_depth_names_allowed_depths():
    with pytest.raises(ValueError,
                       match=r'depth 42.*\[18, 34, 50, 101, 152\]'):
        FcaNet(42)
    with pytest.raises(KeyError):  # as MMDetection's ResNet
        FcaNet(42)


def test_reduction_and_method_are_passed_to_every_layer():
    model = FcaNet(50, reduction=8, freq_sel_method='low4')
    for att in all_atts(model):
        assert att.fc[0].out_features == att.in_channels // 8
        assert att.freq_sel_method == 'low4'
    with pytest.raises(ValueError, match="'top5'"):
        FcaNet(50, freq_sel_method='top5')


def test_contract_dilation_matches_mmseg_resnetv1c():
    """With deep_stem + contract_dilation, FcaNet without its FCA layers is
    MMSegmentation's ResNetV1c: same keys, same output."""
    from mmseg.models.backbones import ResNetV1c
    kwargs = dict(depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                  norm_eval=False)
    ours = FcaNet(deep_stem=True, contract_dilation=True, **kwargs)
    ours.init_weights()
    theirs = ResNetV1c(contract_dilation=True, **kwargs)
    state = {k: v for k, v in ours.state_dict().items() if '.att.' not in k}
    theirs.load_state_dict(state, strict=True)
    for layer in (ours.layer1, ours.layer2, ours.layer3, ours.layer4):
        for block in layer:
            block.att = torch.nn.Identity()
    assert ours.layer3[0].conv2.dilation == (1, 1)
    assert ours.layer4[0].conv2.dilation == (2, 2)
    assert ours.layer4[1].conv2.dilation == (4, 4)
    theirs.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours.eval()(x), theirs(x)):
            torch.testing.assert_close(a, b)


def resnet50_checkpoint(path, prefix=''):
    """A plain ResNet-50 state dict, made here (no download): MMDetection's
    ResNet has torchvision's key names."""
    torch.manual_seed(0)
    state = ResNet(50).state_dict()
    torch.save({f'{prefix}{k}': v for k, v in state.items()}, path)
    return state


@pytest.mark.parametrize('prefix', [None, 'backbone.'])
def test_pretrained_resnet_checkpoint_is_refused(prefix, tmp_path):
    """A ResNet checkpoint has no FCA weights: FcaNet says so and how to
    proceed, and loads nothing, instead of mmengine's missing-keys list."""
    path = str(tmp_path / 'resnet50.pth')
    resnet = resnet50_checkpoint(path, prefix or '')
    model = FcaNet(50, init_cfg=dict(type='Pretrained', checkpoint=path,
                                     prefix=prefix))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        model.init_weights()
    msg = str(err.value)
    under = " under prefix 'backbone.'" if prefix else ''
    assert (f"FcaNet-50 refuses the init_cfg Pretrained checkpoint {path!r}: "
            f'it holds no FCA weights (none of its {len(resnet)} entries'
            f'{under} belongs to an FCA layer') in msg
    assert ('python tools/model_converters/fcanet2mmfca.py fca50.pth '
            'checkpoints/fcanet50_in1k.pth') in msg
    assert 'init_cfg=None' in msg and '_delete_=True' in msg
    for k, v in model.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k]), k


def test_model_zoo_resnet_is_refused_before_any_download(tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    for ckpt in ('torchvision://resnet50', 'open-mmlab://resnet50_caffe'):
        model = FcaNet(50, init_cfg=dict(type='Pretrained', checkpoint=ckpt))
        with pytest.raises(ValueError,
                           match=f'{ckpt.split(":")[0]}:// names a model '
                           'zoo without FcaNet weights'):
            model.init_weights()
    assert not (tmp_path / 'hub').exists()
    # no released weights of this depth: only from scratch is offered
    model = FcaNet(18, init_cfg=dict(type='Pretrained',
                                     checkpoint='torchvision://resnet18'))
    with pytest.raises(ValueError, match=r'To proceed, train the backbone '
                       r'from scratch with init_cfg=None \(the release '
                       r'publishes no FcaNet-18 weights'):
        model.init_weights()


def test_readme_trap_on_mmdetection_resnet_config_is_refused():
    """The plug-in snippet without _delete_=True keeps ResNet's
    torchvision://resnet50: the detector's init_weights refuses it."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    cfg = Config.fromstring(
        "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n"
        "model = dict(backbone=dict(type='FcaNet', depth=50))\n", '.py')
    assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://resnet50'
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match='torchvision://resnet50.*no FCA'):
        detector.init_weights()


def test_pretrained_fcanet_checkpoint_is_not_refused(tmp_path):
    """Partial FCA weights are mmengine's missing-keys matter, not a
    refusal: one FCA key is enough to count as an FcaNet checkpoint."""
    src = FcaNet(50)
    state = {k: v for k, v in src.state_dict().items()
             if '.att.' not in k or k.startswith('layer1.0.att.')}
    path = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': state}, path)
    model = FcaNet(50, init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    torch.testing.assert_close(model.state_dict()['layer1.0.att.fc.0.weight'],
                               state['layer1.0.att.fc.0.weight'])
