"""tools/deployment/deploy.py on an FcaNet classifier (MMPretrain) and an
FCN FcaNet segmentor (MMSegmentation), small ones from the shipped configs
on the synthetic sets: ONNX Runtime gives PyTorch's scores and pixel
labels, and --eval puts its top-1 and mIoU beside PyTorch's; each run reads
the checkpoint once."""
import importlib.util

import numpy as np
import pytest
import torch

from _helpers import load_tool
from _helpers.runner_configs import classification_cfg, segmentation_cfg
from mmfca.apis import init_model

pytestmark = pytest.mark.skipif(
    None in (importlib.util.find_spec('onnxruntime'),
             importlib.util.find_spec('mmdeploy')),
    reason='mmdeploy 1.3.1 is installed by tools/setup_env.sh (pip install '
    '--no-deps), onnxruntime with the tests extra')
deploy = load_tool('deployment/deploy.py')

#: FCN FcaNet-18 with narrow heads: the shipped FCN FcaNet-50 config with
#: these --cfg-options.
SEG_OPTIONS = {
    'model.backbone.depth': 18, 'model.decode_head.in_channels': 512,
    'model.decode_head.channels': 64,
    'model.auxiliary_head.in_channels': 256,
    'model.auxiliary_head.channels': 32
}


def deployed(cfg, options, tmp_path, capsys, monkeypatch):
    """``cfg`` with random weights (BN statistics too, seed 0) saved as a
    checkpoint, deployed with --eval: the model, the report, the console;
    the checkpoint read once (build, export and evaluation share the model:
    every loader ends in torch.load, counted around the real one)."""
    config = str(tmp_path / 'model.py')
    cfg.dump(config)
    cfg.merge_from_dict(options)
    torch.manual_seed(0)
    model = init_model(cfg)
    for name, buf in model.named_buffers():
        if name.endswith('running_mean'):
            buf.normal_(0, 0.1)
        elif name.endswith('running_var'):
            buf.uniform_(0.5, 1.5)
    ckpt = str(tmp_path / 'weights.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    argv = [config, ckpt, '--work-dir', str(tmp_path / 'deploy'), '--eval']
    if options:
        argv += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    reads, load = [], torch.load

    def counted_load(f, *args, **kwargs):
        reads.append(str(f))
        return load(f, *args, **kwargs)

    monkeypatch.setattr(torch, 'load', counted_load)
    report = deploy.main(argv)
    monkeypatch.undo()
    assert reads.count(ckpt) == 1, reads
    return model, report, capsys.readouterr().out


def onnx_session(report):
    import onnxruntime as ort
    return ort.InferenceSession(report['export']['onnx'],
                                providers=['CPUExecutionProvider'])


def test_classifier_deploys_with_pytorchs_scores_and_top1(
        imagenet_root, tmp_path, capsys, monkeypatch):
    cfg = classification_cfg('configs/fcanet/fcanet18_8xb32_in1k.py',
                             imagenet_root, tmp_path / 'train')
    cfg.model.head.init_cfg = dict(type='Normal', layer='Linear', std=0.3)
    model, report, out = deployed(cfg, {}, tmp_path, capsys, monkeypatch)
    assert report['export']['domains'] == ['']
    compared = report['compared']
    assert compared['max_score_diff'] < 1e-4 and compared['same_top1']
    # independently: a plain session on a batch of another size gives the
    # softmax of PyTorch's logits
    x = torch.randn(2, 3, 72, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x, mode='tensor').softmax(-1).numpy()
    got, = onnx_session(report).run(None, {'input': x.numpy()})
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert ref.max(-1).min() > 0.2  # scores, not a uniform 1/6
    onnx, pytorch = (report['eval'][k] for k in ('onnxruntime', 'pytorch'))
    assert abs(onnx['accuracy/top1'] - pytorch['accuracy/top1']) <= 0.5
    assert (f"top1         ONNX Runtime {onnx['accuracy/top1']:.3f}   "
            f"PyTorch {pytorch['accuracy/top1']:.3f}") in out
    assert '[deploy] classification model to ONNX Runtime' in out


def test_segmentor_deploys_with_pytorchs_labels_and_miou(
        seg_root, tmp_path, capsys, monkeypatch):
    cfg = segmentation_cfg(
        'configs/seg/fcn_fca50-d8_4xb4-80k_ade20k-512x512.py', seg_root,
        tmp_path / 'train')
    # MMDeploy prepares the image with the config's test_pipeline (the
    # shipped config's resizes to 512 px)
    cfg.test_pipeline = cfg.test_dataloader.dataset.pipeline
    model, report, out = deployed(cfg, SEG_OPTIONS, tmp_path, capsys,
                                  monkeypatch)
    assert report['export']['domains'] == ['']
    assert report['compared']['equal_labels'] >= 0.99
    # independently: a plain session's labels are the argmax of PyTorch's
    # logits resized to the input (MMSegmentation's)
    from mmseg.models.utils import resize
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = resize(model(x, mode='tensor'), size=(64, 96),
                        mode='bilinear', align_corners=False)
    ref = logits.argmax(1, keepdim=True).numpy()
    got, = onnx_session(report).run(None, {'input': x.numpy()})
    assert got.shape == ref.shape
    assert (got == ref).mean() >= 0.99
    assert len(np.unique(ref)) > 1  # labels, not one class everywhere
    onnx, pytorch = (report['eval'][k] for k in ('onnxruntime', 'pytorch'))
    assert abs(onnx['mIoU'] - pytorch['mIoU']) <= 0.5
    assert (f"mIoU         ONNX Runtime {onnx['mIoU']:.3f}   "
            f"PyTorch {pytorch['mIoU']:.3f}") in out
