"""tools/deployment/export_onnx.py: FcaNet exports with standard ONNX
operators only, and onnxruntime gives PyTorch's outputs at input sizes
other than the export size (dynamic H/W through the pooled filters)."""
import os.path as osp

import pytest
import torch

from _helpers import REPO, load_tool

pytest.importorskip('onnxruntime', reason='the deploy extra (onnx, '
                    'onnxruntime) is part of the test set-up')
export_onnx = load_tool('deployment/export_onnx.py')


def saved_checkpoint(cfg_path, tmp_path):
    """The config's model with random weights (BN statistics too), saved
    as a plain state dict: what a converted checkpoint looks like."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, cfg_path))
    model = export_onnx.build_model(cfg, 'none')
    torch.manual_seed(0)
    for name, buf in model.named_buffers():
        if name.endswith('running_mean'):
            buf.normal_(0, 0.1)
        elif name.endswith('running_var'):
            buf.uniform_(0.5, 1.5)
    path = str(tmp_path / 'weights.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


@pytest.mark.parametrize('config,part,shape', [
    ('configs/fcanet/fcanet18_8xb32_in1k.py', 'backbone', (224, 224)),
    ('configs/fcanet/fcanet50_8xb32_in1k.py', 'tensor', (224, 224)),
    ('configs/mask_rcnn_fca50_coco.py', 'features', (160, 224)),
    ('configs/retinanet_fca50_fpn_1x_coco.py', 'tensor', (128, 160)),
])
def test_export_matches_pytorch_at_other_sizes(config, part, shape,
                                               tmp_path):
    ckpt = saved_checkpoint(config, tmp_path)
    out = str(tmp_path / 'model.onnx')
    summary = export_onnx.main([
        osp.join(REPO, config), ckpt, '--part', part, '--shape',
        *map(str, shape), '--check-shapes', '96', '128', '257', '190',
        '--out', out
    ])
    assert osp.isfile(out) and osp.isfile(str(tmp_path / 'model_check.json'))
    assert summary['domains'] == ['']  # standard ONNX only, no custom ops
    checks = summary['checks']
    assert [c['shape'] for c in checks] == [(1, 3) + shape, (2, 3, 96, 128),
                                            (2, 3, 257, 190)]
    for check in checks:
        assert check['max_rel_error'] < 1e-4, check
    if 'fcanet/' not in config:  # feature maps (not logits) follow the
        # input size: nothing was frozen at the export size
        assert checks[1]['output_shapes'] != checks[2]['output_shapes']


def test_two_stage_tensor_forward_is_refused_with_the_alternative():
    with pytest.raises(ValueError, match=r'two-stage.*part="features"'):
        export_onnx.main([
            osp.join(REPO, 'configs/mask_rcnn_fca50_coco.py'), 'none',
            '--part', 'tensor', '--out', '/nonexistent/x.onnx'
        ])


def test_existing_output_is_kept(tmp_path):
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'keep me')
    with pytest.raises(FileExistsError, match='--force'):
        export_onnx.main([
            osp.join(REPO, 'configs/fcanet/fcanet18_8xb32_in1k.py'), 'none',
            '--out', str(out)
        ])
    assert out.read_bytes() == b'keep me'


def test_help_shows_the_whole_description(capsys):
    with pytest.raises(SystemExit):
        export_onnx.main(['-h'])
    out = ' '.join(capsys.readouterr().out.split())
    assert ('Export an FcaNet model to ONNX (dynamic batch, height and '
            'width) and check the graph with onnxruntime against PyTorch at '
            'several input sizes.') in out
    assert 'An existing output file is kept unless ``--force``.' in out


def test_export_keeps_tracer_warnings_off_the_console(tmp_path):
    """The tracer's notes on the FCA layers' shape checks are silenced
    around the export, and only there."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        export_onnx.main([
            osp.join(REPO, 'configs/fcanet/fcanet18_8xb32_in1k.py'), 'none',
            '--shape', '64', '64', '--check-shapes', '32', '32', '--out',
            str(tmp_path / 'model.onnx')
        ])
        warnings.warn('after the export', torch.jit.TracerWarning)
    tracer = [str(w.message) for w in caught
              if issubclass(w.category, torch.jit.TracerWarning)]
    assert tracer == ['after the export']
