import os.path as osp

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.models import ImageClassifier

from _helpers import REPO, load_tool
from _helpers.release_fcanet import release_features, release_fcanet

fcanet2mmfca = load_tool('model_converters/fcanet2mmfca.py')

from mmfca.converters import convert_file  # noqa: E402
from mmfca.converters.fcanet import EXPECTED  # noqa: E402
from mmfca.models import FcaNet  # noqa: E402


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope='module', params=[34, 50])
def released(request, module_tmp_path):
    depth = request.param
    model = release_fcanet(depth)
    path = module_tmp_path / f'fca{depth}.pth'
    torch.save(model.state_dict(), path)  # a plain state dict, as released
    return depth, model, str(path)


def classifier(depth):
    feat = 512 * FcaNet.arch_settings[depth][0].expansion
    # built under MMPretrain's scope, as its configs do (an earlier test's
    # runner may have left another global scope current)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return ImageClassifier(
            backbone=dict(type='FcaNet', depth=depth, out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000,
                      in_channels=feat))


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
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/det/mask-rcnn_fca50_fpn_1x_coco.py'))
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
             for k, v in release.state_dict().items()
             if not k.startswith('fc.')}
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
    err = capsys.readouterr().err
    size = truncated.stat().st_size
    assert err == (f'error: {truncated} is not a checkpoint: it is a '
                   f'truncated or damaged zip archive ({size} bytes; '
                   f"torch.save's format is a zip archive); expected "
                   f'{EXPECTED}.\n')
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ['trunc.pth']


def test_non_fcanet_state_dict_is_refused(tmp_path, capsys):
    from torchvision.models import resnet50
    src = tmp_path / 'resnet50.pth'
    torch.save(resnet50().state_dict(), src)
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'precious')
    assert fcanet2mmfca.main([str(src), str(dst), '--force']) == 1
    assert f'error: {src}: Not an FcaNet checkpoint' in \
        capsys.readouterr().err
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


class Other:
    """Some class of the user's: not allowed in a checkpoint."""


def torch_bytes(obj):
    buffer = __import__('io').BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize('name,write,what', [
    ('random.pth', lambda p: p.write_bytes(bytes(range(1, 256)) * 8),
     'it is 2040 bytes of binary data (starting with 01 02 03 04 05 06 07 '
     '08)'),
    ('notes.txt', lambda p: p.write_text('epoch,loss\n1,0.25\n'),
     "it is a text file starting with 'epoch,loss'"),
    ('list.pkl', lambda p: p.write_bytes(__import__('pickle').dumps([1, 2])),
     "it is a pickle not written by torch.save"),
    ('list.pth', lambda p: torch.save([1, 2], p),
     'it holds a list, not a dict of tensors'),
    ('half.pth', lambda p: p.write_bytes(
        torch_bytes({'w': torch.ones(64)})[:300]),
     "it is a truncated or damaged zip archive (300 bytes; torch.save's "
     'format is a zip archive)'),
    ('empty.pth', lambda p: p.write_bytes(b''), 'it is an empty file'),
])
def test_inputs_that_are_not_checkpoints_get_one_line(
        name, write, what, tmp_path, capsys):
    """Random bytes, text, another pickle: one line that names the file
    and what was expected, never the advice to trust the file."""
    src = tmp_path / name
    write(src)
    dst = tmp_path / 'out.pth'
    assert fcanet2mmfca.main([str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert err == (f'error: {src} is not a checkpoint: {what}; expected '
                   f'{EXPECTED}.\n')
    assert '--trust-source' not in err and not dst.exists()


def test_only_a_checkpoint_with_extra_objects_gets_the_trust_advice(
        released, tmp_path, capsys):
    _, release, _ = released
    src = tmp_path / 'with_extra.pth'
    torch.save({'state_dict': release.state_dict(), 'meta': Other()}, src)
    assert fcanet2mmfca.main([str(src), str(tmp_path / 'out.pth')]) == 1
    assert capsys.readouterr().err == (
        f'error: {src} is a checkpoint that also holds {__name__}.Other, so '
        f'it was not unpickled (that would run code from the file). If you '
        f'trust the file, pass --trust-source.\n')
    # any torch.save file holding a foreign object gets it, named; trusted,
    # one that holds no dict is then named as such
    torch.save(Other(), src)
    assert fcanet2mmfca.main([str(src), str(tmp_path / 'out.pth')]) == 1
    assert f'also holds {__name__}.Other, so' in capsys.readouterr().err
    assert fcanet2mmfca.main([str(src), str(tmp_path / 'out.pth'),
                              '--trust-source']) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'error: {src} is not a checkpoint: it holds a '
                          'Other, not a dict of tensors;')
    assert '--trust-source' not in err


@pytest.mark.parametrize('trust', [False, True])
def test_each_file_is_described_once(trust, tmp_path, monkeypatch):
    """A file is described once per read: by the loader (untrusted) or by
    the converter (trusted), never again for the converter's message."""
    import mmfca.converters.fcanet as converter
    import mmfca.utils.checkpoint as checkpoint
    from mmfca.utils.checkpoint import describe_file
    described = []

    def counted(path):
        described.append(osp.basename(path))
        return describe_file(path)

    monkeypatch.setattr(converter, 'describe_file', counted)
    monkeypatch.setattr(checkpoint, 'describe_file', counted)
    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(2)}, legacy,
               _use_new_zipfile_serialization=False)
    assert converter.read_checkpoint(str(legacy), trust)['w'].sum() == 2
    (tmp_path / 'random.pth').write_bytes(bytes(range(1, 256)) * 8)
    with pytest.raises(converter.ConversionError, match='binary data'):
        converter.read_checkpoint(str(tmp_path / 'random.pth'), trust)
    assert described == ['legacy.pth', 'random.pth']
    if not trust:
        torch.save({'w': torch.ones(2), 'meta': Other()},
                   tmp_path / 'extra.pth')
        with pytest.raises(converter.ConversionError, match='trust-source'):
            converter.read_checkpoint(str(tmp_path / 'extra.pth'))
        assert described[2:] == ['extra.pth']


def test_a_training_checkpoint_converts_without_trust(released, tmp_path):
    """mmengine's training state (HistoryBuffer, numpy) is read safely."""
    from mmengine.logging import MessageHub
    depth, release, _ = released
    hub = MessageHub.get_instance(f'converter-{depth}')
    hub.update_scalar('train/loss', 0.5)
    src = tmp_path / 'epoch_12.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               FcaNet(depth).state_dict().items()},
                'message_hub': hub.state_dict()}, src)
    meta = convert_file(str(src), str(tmp_path / 'out.pth'))
    assert meta['kind'] == 'detector' and meta['depth'] == depth
