"""Both names resolve from every OpenMMLab library that may build them."""
import importlib

import pytest
import torch
from mmengine.registry import DefaultScope

import mmfca  # noqa: F401

SCOPES = [('mmdet', 'mmdet.registry'), ('mmpretrain', 'mmpretrain.registry'),
          ('mmseg', 'mmseg.registry')]


@pytest.mark.parametrize('scope,module', SCOPES)
def test_names_build_from_each_library_registry(scope, module):
    models = importlib.import_module(module).MODELS
    assert models.scope == scope
    # with the library's default scope active, as in its Runner
    with DefaultScope.overwrite_default_scope(scope):
        backbone = models.build(dict(type='FcaNet', depth=50))
        att = models.build(dict(type='MultiSpectralAttention',
                                in_channels=64))
    assert type(backbone) is mmfca.models.FcaNet and backbone.depth == 50
    assert type(att) is mmfca.models.MultiSpectralAttention
    assert att.in_channels == 64
    # and outside the library's default scope
    small = models.build(dict(type='FcaNet', depth=18))
    assert type(small) is mmfca.models.FcaNet and small.depth == 18


def test_registered_once_in_the_root_registry():
    from mmengine.registry import MODELS
    assert MODELS.get('FcaNet') is mmfca.models.FcaNet
    assert MODELS.get('MultiSpectralAttention') is \
        mmfca.models.MultiSpectralAttention


def test_plugin_route_in_mmdet_resnet():
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(
            dict(type='ResNet', depth=50, plugins=[
                dict(cfg=dict(type='MultiSpectralAttention'),
                     position='after_conv3')
            ]))
    model.eval()
    assert model.layer1[0].after_conv3_plugin_names == ['att']
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert outs[0].shape == (1, 256, 16, 16)
