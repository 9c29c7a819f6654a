import os.path as osp

import pytest
import torch
from mmpretrain.models import ImageClassifier

from _helpers import REPO, load_tool
from _helpers.release_fcanet import release_features, release_fcanet

fcanet2mmfca = load_tool('model_converters/fcanet2mmfca.py')

from mmfca.converters import convert_file  # noqa: E402
from mmfca.models import FcaNet  # noqa: E402


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope='module', params=[34, 50])
def released(request, tmp_path_factory):
    depth = request.param
    model = release_fcanet(depth)
    path = tmp_path_factory.mktemp('release') / f'fca{depth}.pth'
    torch.save(model.state_dict(), path)  # a plain state dict, as released
    return depth, model, str(path)


def classifier(depth):
    feat = 512 * FcaNet.arch_settings[depth][0].expansion
    return ImageClassifier(
        backbone=dict(type='FcaNet', depth=depth, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=feat))


def test_imagenet_parity_logits_and_detection_size_features(
        released, tmp_path):
    depth, release, src = released
    dst = str(tmp_path / f'fcanet{depth}_in1k.pth')
    assert fcanet2mmfca.main([src, dst]) == 0
    ckpt = torch.load(dst, weights_only=True)  # tensors and plain data only
    assert ckpt['meta']['depth'] == depth
    assert ckpt['meta']['kind'] == 'imagenet'

    model = classifier(depth)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    model.eval()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours = model(x, mode='tensor')
        theirs = release(x)
    err = rel_err(ours, theirs)
    print(f'FcaNet-{depth} logits rel. error at 224x224: {err:.2e}')
    assert err < 1e-5

    # detection-size input: every stage pools to its filter size
    backbone = FcaNet(depth)
    backbone.load_state_dict(
        {k[9:]: v for k, v in ckpt['state_dict'].items()
         if k.startswith('backbone.')}, strict=True)
    backbone.eval()
    x = torch.randn(1, 3, 320, 480)
    with torch.no_grad():
        ours = backbone(x)
        theirs = release_features(release, x)
    for stage, (a, b) in enumerate(zip(ours, theirs)):
        err = rel_err(a, b)
        print(f'FcaNet-{depth} stage {stage + 1} rel. error at 320x480: '
              f'{err:.2e}')
        assert a.shape == b.shape and err < 1e-5


def test_shipped_configs_load_the_converted_release(released, tmp_path):
    """The ImageNet config of that depth gives the release's logits; for
    FcaNet-50 the COCO config's init_cfg (prefix='backbone.') loads it."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS as CLS_MODELS
    depth, release, src = released
    dst = str(tmp_path / f'fcanet{depth}_in1k.pth')
    convert_file(src, dst)
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/fcanet/fcanet{depth}_8xb32_in1k.py'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        cls = CLS_MODELS.build(cfg.model)
    load_checkpoint(cls, dst, strict=True)  # weights_only=True inside
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert rel_err(cls.eval()(x, mode='tensor'), release(x)) < 1e-5
    if depth != 50:
        return
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs/mask_rcnn_fca50_coco.py'))
    cfg.model.backbone.init_cfg.checkpoint = dst
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = MODELS.build(cfg.model)
    det.init_weights()
    state = torch.load(dst, weights_only=True)['state_dict']
    for k, v in det.backbone.state_dict().items():
        torch.testing.assert_close(v, state['backbone.' + k])


def test_detector_round_trip_keeps_every_backbone_tensor(released, tmp_path):
    depth, release, _ = released
    state = {f'backbone.{k}': v.clone()
             for k, v in release.state_dict().items() if not k.startswith('fc.')}
    state['neck.lateral_convs.0.conv.weight'] = torch.randn(256, 64, 1, 1)
    state['roi_head.bbox_head.fc_cls.weight'] = torch.randn(81, 1024)
    src = tmp_path / 'mask_rcnn_fca.pth'
    torch.save({'meta': {'CLASSES': ('person', 'car')}, 'state_dict': state,
                'optimizer': {'state': {}}}, src)
    dst = str(tmp_path / 'converted.pth')
    meta = convert_file(str(src), dst)
    assert meta['kind'] == 'detector' and meta['depth'] == depth
    out = torch.load(dst, weights_only=True)
    assert set(out['state_dict']) == set(state)
    for k, v in state.items():
        assert torch.equal(out['state_dict'][k], v), k
    assert 'optimizer' not in out
    assert out['meta']['dataset_meta']['classes'] == ('person', 'car')
    # the backbone part loads strictly into mmfca's FcaNet
    FcaNet(depth).load_state_dict(
        {k[9:]: v for k, v in out['state_dict'].items()
         if k.startswith('backbone.')}, strict=True)


def _bytes(path):
    return open(path, 'rb').read()


def test_truncated_file_clear_error_dst_untouched(released, tmp_path,
                                                  capsys):
    _, _, src = released
    truncated = tmp_path / 'trunc.pth'
    truncated.write_bytes(_bytes(src)[:len(_bytes(src)) // 2])
    dst = tmp_path / 'out.pth'
    assert fcanet2mmfca.main([str(truncated), str(dst)]) == 1
    assert 'truncated or not a torch checkpoint' in capsys.readouterr().err
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ['trunc.pth']


def test_non_fcanet_state_dict_is_refused(tmp_path, capsys):
    from torchvision.models import resnet50
    src = tmp_path / 'resnet50.pth'
    torch.save(resnet50().state_dict(), src)
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'precious')
    assert fcanet2mmfca.main([str(src), str(dst), '--force']) == 1
    assert 'Not an FcaNet checkpoint' in capsys.readouterr().err
    assert dst.read_bytes() == b'precious'


def test_unknown_and_missing_keys_are_listed(released, tmp_path):
    depth, release, _ = released
    state = dict(release.state_dict())
    state['layer1.0.extra.weight'] = torch.zeros(1)
    del state['layer2.0.att.fc.0.weight']
    src = tmp_path / 'bad.pth'
    torch.save(state, src)
    from mmfca.converters import ConversionError
    with pytest.raises(ConversionError) as err:
        convert_file(str(src), str(tmp_path / 'out.pth'))
    assert "unknown keys (1): ['layer1.0.extra.weight']" in str(err.value)
    assert "missing keys (1): ['layer2.0.att.fc.0.weight']" in str(err.value)


def test_existing_dst_is_refused_unless_force(released, tmp_path, capsys):
    depth, _, src = released
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'precious')
    assert fcanet2mmfca.main([src, str(dst)]) == 1
    assert 'exists; not overwriting' in capsys.readouterr().err
    assert dst.read_bytes() == b'precious'
    assert fcanet2mmfca.main([src, str(dst), '--force']) == 0
    assert torch.load(dst, weights_only=True)['meta']['depth'] == depth
