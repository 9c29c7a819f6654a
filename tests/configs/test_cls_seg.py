"""MMPretrain classification and MMSegmentation segmentation with FcaNet:
one training iteration plus evaluation through the real Runner on the
synthetic sets, from the shipped configs. The reported metrics equal the
ones computed here, with numpy, from the model's own predictions."""
import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from _helpers import run, tool
from _helpers.runner_configs import classification_cfg, segmentation_cfg
from mmfca.datasets import SEG_CLASSES


def predictions(runner):
    """The evaluated model's data samples over the validation set."""
    runner.model.eval()
    samples = []
    with torch.no_grad():
        for batch in runner.val_dataloader:
            samples.extend(runner.model.val_step(batch))
    return samples


def topk_accuracy(scores, labels, k):
    """Percentage of rows whose label is among the k highest scores."""
    topk = np.argsort(-scores, axis=1, kind='stable')[:, :k]
    return 100.0 * np.mean([lab in row for row, lab in zip(topk, labels)])


@pytest.mark.parametrize('config', [
    'configs/fcanet/fcanet18_8xb32_in1k.py',
    'configs/fcanet/fcanet50_8xb32_in1k.py'
])
def test_classification_trains_and_reports_top1_top5(config, imagenet_root,
                                                     tmp_path):
    cfg = classification_cfg(config, imagenet_root, tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1  # 8 images, batch 8
    metrics = runner.val_loop.run()
    assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
    samples = predictions(runner)
    assert len(samples) == 12
    scores = np.stack([s.pred_score.numpy() for s in samples])
    labels = np.array([int(s.gt_label) for s in samples])
    assert metrics['accuracy/top1'] == pytest.approx(
        topk_accuracy(scores, labels, 1), abs=1e-4)
    assert metrics['accuracy/top5'] == pytest.approx(
        topk_accuracy(scores, labels, 5), abs=1e-4)


def segmentation_metrics(samples, num_classes, ignore_index=255):
    """aAcc, mIoU and mAcc (percent, as MMSegmentation rounds them) from a
    confusion matrix over all pixels; classes absent from both prediction
    and ground truth do not count."""
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    for s in samples:
        pred = s.pred_sem_seg.data.numpy().ravel()
        gt = s.gt_sem_seg.data.numpy().ravel()
        keep = gt != ignore_index
        conf += np.bincount(gt[keep] * num_classes + pred[keep],
                            minlength=num_classes**2).reshape(
                                num_classes, num_classes)
    tp = np.diag(conf).astype(float)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = tp / (conf.sum(0) + conf.sum(1) - tp)
        acc = tp / conf.sum(1)
    return dict(aAcc=round(100 * tp.sum() / conf.sum(), 2),
                mIoU=round(100 * np.nanmean(iou), 2),
                mAcc=round(100 * np.nanmean(acc), 2))


@pytest.mark.parametrize('config', [
    'configs/seg/fcn_fca50-d8_4xb4-80k_ade20k-512x512.py',
    'configs/seg/upernet_fca50_4xb2-80k_cityscapes-512x1024.py'
])
def test_segmentation_trains_and_reports_miou(config, seg_root, tmp_path):
    cfg = segmentation_cfg(config, seg_root, tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    metrics = runner.val_loop.run()
    assert {'mIoU', 'aAcc', 'mAcc'} <= set(metrics)
    expected = segmentation_metrics(predictions(runner), len(SEG_CLASSES))
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=0.011), name


@pytest.mark.slow
def test_train_tool_runs_a_classification_config(imagenet_root, tmp_path):
    """tools/train.py picks MMPretrain by the config's default_scope."""
    cfg = classification_cfg('configs/fcanet/fcanet18_8xb32_in1k.py',
                             imagenet_root, tmp_path / 'work')
    path = tmp_path / 'cls.py'
    cfg.dump(str(path))
    proc = run(tool('train.py') + [str(path)])
    assert 'accuracy/top1' in proc.stdout
    ckpt = tmp_path / 'work' / 'epoch_1.pth'
    proc = run(tool('test.py') + [str(path), str(ckpt), '--work-dir',
                                  str(tmp_path / 'work')])
    assert 'accuracy/top5' in proc.stdout
