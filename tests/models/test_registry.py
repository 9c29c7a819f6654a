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


# Every name mmfca registers, by registry (the list the docs give): a new
# or renamed registration fails here until it is documented.
# (scope, registry name): mmengine's root registries serve MMDetection,
# MMPretrain and MMSegmentation alike; MMDetection's own ones only it.
REGISTERED = {
    ('mmengine', 'model'): {
        'CBAMChannelAttention', 'ECALayer', 'FcaNet',
        'AblationSqueeze', 'MultiSpectralAttention',
        'MultiSpectralChannelAttention', 'MultiSpectralDCT',
        'MultiSpectralSELayer', 'MultiSpectralSEResNeXt',
        'MultiSpectralSEResNet', 'MultiSpectralSqueeze'
    },
    ('mmengine', 'hook'): {'RNGStateHook'},
    ('mmdet', 'model'): {'MatmulRoIExtractor'},
    ('mmdet', 'transform'): {'OrientationPad'},
}


def registered_by_mmfca():
    """{(scope, registry name): names of mmfca's classes} over every
    registry of mmengine, MMDetection, MMPretrain and MMSegmentation."""
    from mmengine.registry import Registry
    found = {}
    for lib in ('mmengine', 'mmdet', 'mmpretrain', 'mmseg'):
        module = importlib.import_module(f'{lib}.registry')
        for registry in vars(module).values():
            if not isinstance(registry, Registry):
                continue
            names = {name for name, obj in registry.module_dict.items()
                     if getattr(obj, '__module__', '').startswith('mmfca.')}
            if names:
                found[(registry.scope, registry.name)] = names
    return found


def test_every_registered_name_is_listed():
    assert registered_by_mmfca() == REGISTERED


def test_checkpoint_schemes_are_mmfcas():
    """Local paths and http(s) URLs load weights_only; the trusted scheme
    marks the run's own resume checkpoints (mmfca.utils.checkpoint)."""
    from mmengine.runner import CheckpointLoader

    from mmfca.utils import checkpoint
    ours = {prefix: loader.__name__
            for prefix, loader in CheckpointLoader._schemes.items()
            if loader.__module__ == checkpoint.__name__}
    assert ours == {
        '': 'load_from_weights_only',
        checkpoint.TRUSTED_SCHEME: 'load_from_trusted_work_dir'
    }
