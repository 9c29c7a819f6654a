"""fit_frequencies.py end to end: one short training on the synthetic
classification set, the 49 cells ranked, the snippet, a rerun."""
import copy
import json
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config

from _helpers import REPO, load_tool, run, tool
from _helpers.runner_configs import classification_cfg
from mmfca.datasets import (make_synthetic_imagenet,
                            make_synthetic_segmentation)
from mmfca.frequency_selection import GRID_CELLS
from mmfca.models import FcaNet

#: A progress line of the evaluation: cell k of 49 (u, v), the metric, the
#: time so far and, unless it is the last cell, about how long is left.
CELL = re.compile(r'\[fit\] cell (\d+) of 49 \((\d), (\d)\): accuracy/top1 '
                  r'(\S+), \d+:\d\d:\d\d elapsed(, about \d+:\d\d:\d\d '
                  r'left)?$')
TRAIN = re.compile(r'\[fit\] training: iteration (\d+) of (\d+), '
                   r'\d+:\d\d:\d\d elapsed(, about \d+:\d\d:\d\d left)?$')


@pytest.mark.slow
def test_fit_frequencies_ranks_the_49_cells(tmp_path):
    data = make_synthetic_imagenet(str(tmp_path / 'data'), num_train=8,
                                   num_val=4)
    cfg = classification_cfg('configs/fcanet/fcanet18_8xb32_in1k.py', data,
                             tmp_path / 'work')
    cfg.val_dataloader.batch_size = 4
    config = str(tmp_path / 'cls.py')
    cfg.dump(config)
    out = str(tmp_path / 'fit')
    args = tool('analysis_tools/fit_frequencies.py') + [
        config, '--out-dir', out, '--max-epochs', '1', '--num-freqs', '4',
        '--method', 'sampling']
    proc = run(args)
    lines = proc.stdout.splitlines()
    # only the tool's own lines on the console
    assert all(line.startswith('[fit] ') for line in lines), lines
    train = [TRAIN.match(line).groups() for line in lines
             if TRAIN.match(line)]
    assert train[-1][:2] == ('1', '1') and train[-1][2] is None
    cells = [CELL.match(line).groups() for line in lines if CELL.match(line)]
    assert [(int(u), int(v)) for _, u, v, _, _ in cells] == list(GRID_CELLS)
    assert [int(k) for k, *_ in cells] == list(range(1, 50))
    assert all(c[4] for c in cells[:-1]) and cells[-1][4] is None
    # the records, as the ablation writes them, and the ranking
    values = {}
    for _, u, v, shown, _ in cells:
        with open(osp.join(out, 'cells', f'u{u}_v{v}.json')) as f:
            record = json.load(f)
        assert shown == f'{record["value"]:.4g}'
        assert 0 <= record['value'] <= 100
        values[(int(u), int(v))] = record['value']
    with open(osp.join(out, 'ranking.json')) as f:
        ranking = json.load(f)
    assert ranking['metric'] == 'accuracy/top1'
    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    assert [tuple(p) for p in ranking['pairs']] == [c for c, _ in ranked]
    assert ranking['values'] == [x for _, x in ranked]
    assert lines[-5] == '[fit] accuracy/top1, best first: ' + ', '.join(
        f'({u},{v}) {x:.4g}' for (u, v), x in ranked)
    # the snippet: the first 4 pairs, a config that builds FcaNet
    snippet = osp.join(out, 'freq_sel_method.py')
    assert lines[-4:-1] == [f'[fit] {snippet}:'] + [
        f'[fit] {line}' for line in open(snippet).read().splitlines()]
    pairs = Config.fromfile(snippet).model.backbone.freq_sel_method
    assert [tuple(p) for p in pairs] == [c for c, _ in ranked[:4]]
    FcaNet(18, freq_sel_method=pairs)
    assert lines[-1] == f'[fit] {osp.join(out, "heatmap.png")}'
    # the run's whole output in its folder: one training epoch, then one
    # validation per cell, each with its cell; the trained weights
    with open(osp.join(out, 'run', 'output.log')) as f:
        output = f.read()
    assert 'Epoch(train)' in output
    logged = re.findall(r'Epoch\(val\).*accuracy/top1: (\S+)', output)
    assert [float(x) for x in logged] == pytest.approx(
        [values[c] for c in GRID_CELLS], abs=1e-4)
    state = torch.load(osp.join(out, 'run', 'fitted.pth'),
                       map_location='cpu', weights_only=False)['state_dict']
    assert 'backbone.layer1.0.att.dct_layer.weight' in state
    # a rerun keeps everything: nothing trained or evaluated again
    again = run(args).stdout.splitlines()
    assert again[0] == '[fit] all 49 cells ranked earlier'
    assert again[1:] == lines[-5:]


@pytest.mark.slow
def test_gumbel_mode_ranks_by_the_learnt_logits(tmp_path):
    """``--method gumbel``: one training, no evaluation; the records are
    each cell's log-probability averaged over the layers of the saved
    logits, which learnt at their own rate without decay; the same seed
    gives the same ranking."""
    data = make_synthetic_imagenet(str(tmp_path / 'data'), num_train=8,
                                   num_val=4)
    cfg = classification_cfg('configs/fcanet/fcanet18_8xb32_in1k.py', data,
                             tmp_path / 'work')
    # the residual branches (the attention's input) alive from the start
    cfg.model.backbone.zero_init_residual = False
    config = str(tmp_path / 'cls.py')
    cfg.dump(config)

    def fit(name):
        out = str(tmp_path / name)
        lines = run(tool('analysis_tools/fit_frequencies.py') + [
            config, '--out-dir', out, '--max-epochs', '1', '--method',
            'gumbel', '--cfg-options', 'randomness.seed=3']).stdout
        with open(osp.join(out, 'ranking.json')) as f:
            return out, lines.splitlines(), json.load(f)

    out, lines, ranking = fit('fit')
    assert not any(CELL.match(line) for line in lines)
    assert '[fit] 49 cells scored by their selection log-probability' in lines
    assert ranking['metric'] == 'selection/log_prob'
    # its weights under a name of their own: sampling's are not its
    assert not osp.exists(osp.join(out, 'run', 'fitted.pth'))
    state = torch.load(osp.join(out, 'run', 'fitted_gumbel.pth'),
                       map_location='cpu', weights_only=False)['state_dict']
    logits = np.stack([x.double().numpy() for k, x in state.items()
                       if k.endswith('dct_layer.logits')])
    assert logits.shape == (8, 49) and np.ptp(logits) > 0
    log_prob = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).mean(0)
    order = sorted(range(49), key=lambda i: -log_prob[i])
    assert [tuple(p) for p in ranking['pairs']] == [
        GRID_CELLS[i] for i in order]
    np.testing.assert_allclose(ranking['values'], log_prob[order], rtol=0,
                               atol=1e-9)
    with open(osp.join(out, 'run', 'output.log')) as f:
        output = f.read()
    assert re.search(r'dct_layer\.logits:lr=100\.0', output)
    assert re.search(r'dct_layer\.logits:weight_decay=0\.0', output)
    assert fit('again')[2] == ranking


def test_probe_is_the_default_and_reads_the_model_as_built(tmp_path):
    """The default mode: no training; the records are the probe's scores
    of the model the config builds (seeded), the first images of the
    training loader; a rerun keeps them."""
    from mmfca.frequency_selection import (CellReadingProbe,
                                           present_classes)
    from mmfca.utils import build_runner, load_config
    data = make_synthetic_imagenet(str(tmp_path / 'data'), num_train=24,
                                   num_val=4)
    cfg = classification_cfg('configs/fcanet/fcanet18_8xb32_in1k.py', data,
                             tmp_path / 'work')
    config = str(tmp_path / 'cls.py')
    cfg.dump(config)
    out = str(tmp_path / 'fit')
    args = tool('analysis_tools/fit_frequencies.py') + [
        config, '--out-dir', out, '--probe-images', '20', '--cfg-options',
        'randomness.seed=5']
    lines = run(args).stdout.splitlines()
    assert '[fit] probing 20 training images, 8 FCA layers, 6 classes; no ' \
        'training' in lines
    assert lines[lines.index('[fit] 49 cells scored by their reading of '
                             'the labels') - 1].startswith(
                                 '[fit] probing: image 20 of 20')
    assert not osp.exists(osp.join(out, 'run', 'fitted.pth'))
    with open(osp.join(out, 'ranking.json')) as f:
        ranking = json.load(f)
    assert ranking['metric'] == 'probe/eta2'
    # FcaNet's zero-initialised last norms would leave nothing to read
    assert '[fit] residual branches initialised alive (zero_init_residual' \
        '=False): zero-initialised last norms leave the FCA layers nothing ' \
        'to read' in lines
    # the same probe, here: the config's model, seeded, residual branches
    # alive; its first 20 training images (the loader's order under the
    # seed)
    cfg = load_config(config, {'randomness.seed': 5,
                               'model.backbone.zero_init_residual': False},
                      str(tmp_path / 'me'))
    runner = build_runner(cfg)
    model = runner.model
    model.init_weights()
    probe = CellReadingProbe(model, 6)
    model.train()
    seen = 0
    with torch.no_grad():
        for batch in runner.train_dataloader:
            data = model.data_preprocessor(batch, False)
            samples = data['data_samples'][:20 - seen]
            probe.update([present_classes(s) for s in samples])
            model.backbone(data['inputs'][:len(samples)])
            seen += len(samples)
            if seen == 20:
                break
    scores = probe.scores()
    assert len(set(scores.values())) > 40
    ranked = sorted(scores, key=lambda c: -scores[c])
    assert [tuple(p) for p in ranking['pairs']] == ranked
    np.testing.assert_allclose(ranking['values'], [scores[c] for c in ranked],
                               rtol=1e-9)
    assert run(args).stdout.splitlines()[0] == \
        '[fit] all 49 cells ranked earlier'


@pytest.mark.parametrize('task', ['detection', 'segmentation'])
def test_probe_reads_detection_and_segmentation_labels(
        task, synthetic_coco, tmp_path, capsys):
    from _helpers import DEMO_CONFIG, data_options
    from _helpers.runner_configs import segmentation_cfg
    module = load_tool('analysis_tools/fit_frequencies.py')
    out = str(tmp_path / 'fit')
    if task == 'detection':  # the demo's Mask R-CNN FcaNet-18; a
        # visualizer of its own (own_visualizer's reason)
        argv = [DEMO_CONFIG, '--out-dir', out, '--cfg-options'] + \
            data_options(synthetic_coco) + ['visualizer.name=probe-det']
    else:  # FCN FcaNet-50, enough images for classes present and absent
        seg_root = make_synthetic_segmentation(str(tmp_path / 'seg'),
                                               num_train=12, num_val=2)
        cfg = segmentation_cfg(
            'configs/seg/fcn_fca50-d8_4xb4-80k_ade20k-512x512.py', seg_root,
            tmp_path / 'work')
        config = str(tmp_path / 'seg.py')
        cfg.dump(config)
        argv = [config, '--out-dir', out]
    module.probe(module.parse_args(argv))
    # every training image; the classes of each library's labels
    from mmfca.datasets import SEG_CLASSES, SYNTHETIC_COCO_CLASSES
    images, layers, classes = (8, 8, len(SYNTHETIC_COCO_CLASSES)) if task == \
        'detection' else (12, 16, len(SEG_CLASSES))
    assert f'[fit] probing {images} training images, {layers} FCA layers, ' \
        f'{classes} classes; no training' in capsys.readouterr().out
    with open(osp.join(out, 'cells', 'u0_v0.json')) as f:
        assert json.load(f)['metric'] == 'probe/eta2'
    from mmfca.frequency_selection import read_records
    values = read_records(out)
    assert len(values) == 49
    assert all(0 <= x <= 1 for x in values.values())
    assert len(set(values.values())) > 40


def test_an_out_dir_of_another_method_is_refused(tmp_path):
    """Cells ranked by sampling (its validation metric) are not taken for
    the probe's, nor overwritten by them."""
    from mmfca.frequency_selection import write_record
    module = load_tool('analysis_tools/fit_frequencies.py')
    out = str(tmp_path / 'fit')
    write_record(out, 0, 1, 'accuracy/top1', {'accuracy/top1': 50.0})
    config = osp.join(REPO, 'configs/fcanet/fcanet18_8xb32_in1k.py')
    with pytest.raises(SystemExit, match=r"u0_v1.json ranks by "
                       r"'accuracy/top1', not 'probe/eta2': .* holds another "
                       'ranking; pass another --out-dir'):
        module.main([config, '--out-dir', out])
    with open(osp.join(out, 'cells', 'u0_v1.json')) as f:
        assert json.load(f)['value'] == 50.0


def test_help_shows_the_whole_description(capsys):
    module = load_tool('analysis_tools/fit_frequencies.py')
    with pytest.raises(SystemExit):
        module.main(['-h'])
    out = ' '.join(capsys.readouterr().out.split())
    first = ' '.join(module.__doc__.split('\n\n')[0].split())
    assert first.endswith('.') and first in out


def test_each_cell_is_evaluated_with_its_own_bn_statistics(tmp_path):
    from mmengine.config import ConfigDict

    from mmfca.frequency_selection import set_cell, use_cell_sampling
    from mmfca.utils import build_runner
    module = load_tool('analysis_tools/fit_frequencies.py')
    data = make_synthetic_imagenet(str(tmp_path / 'data'), num_train=16,
                                   num_val=4)
    cfg = classification_cfg('configs/fcanet/fcanet18_8xb32_in1k.py', data,
                             tmp_path / 'work')
    # the same 16 training images in the same order at every pass
    cfg.train_dataloader.dataset.pipeline = cfg.val_dataloader.dataset \
        .pipeline
    cfg.train_dataloader.sampler = ConfigDict(type='DefaultSampler',
                                              shuffle=False)
    cfg.launcher = 'none'
    runner = build_runner(cfg)
    use_cell_sampling(runner.model)
    model = runner.model
    bn = model.backbone.layer4[0].bn1  # after three stages of attention
    trained = bn.running_mean.clone()

    def batch_means(cell):
        """The mean of ``bn``'s input per training batch, the cell set in
        every FCA layer (train mode: batch statistics; on a copy)."""
        other = copy.deepcopy(model).train()
        set_cell(other, cell)
        seen = []
        other.backbone.layer4[0].bn1.register_forward_hook(
            lambda m, i, o: seen.append(i[0].mean((0, 2, 3))))
        with torch.no_grad():
            for batch in runner.train_dataloader:
                other(**other.data_preprocessor(batch, False))
        return torch.stack(seen)

    metrics = module.evaluate_cell(runner, (3, 1), 16)
    assert 'accuracy/top1' in metrics
    expected = batch_means((3, 1))
    assert len(expected) == 2
    torch.testing.assert_close(bn.running_mean, expected.mean(0))
    module.evaluate_cell(runner, (0, 0), 16)
    torch.testing.assert_close(bn.running_mean,
                               batch_means((0, 0)).mean(0))
    assert not torch.allclose(bn.running_mean, expected.mean(0))
    # 0: the statistics stay as they are
    before = bn.running_mean.clone()
    module.evaluate_cell(runner, (6, 6), 0)
    assert torch.equal(bn.running_mean, before)
    assert not torch.equal(before, trained)


def test_bad_counts_are_refused_with_the_allowed_ones(capsys):
    module = load_tool('analysis_tools/fit_frequencies.py')
    for argv, message in (
            (['--bn-samples', '-1'], "--bn-samples -1 is negative; 0 keeps "
             "the training's BN statistics."),
            (['--num-freqs', '50'], '--num-freqs 50 is not in [1, 49].'),
            (['--temperature', '5', '0'], '--temperature [5.0, 0.0] must be '
             'positive and finite.'),
            (['--probe-images', '3'], '--probe-images 3 is below 4'),
            (['--temperature', '5', 'inf'], 'must be positive and finite'),
            (['--logit-lr-mult', '0'], '--logit-lr-mult 0.0 must be '
             'positive'),
            (['--metric', 'accuracy/top1'], '--metric accuracy/top1 ranks '
             "sampling's cells; --method probe ranks by probe/eta2."),
            (['--method', 'darts'], "invalid choice: 'darts' (choose from "
             "'probe', 'sampling', 'gumbel')")):
        with pytest.raises(SystemExit):
            module.parse_args(['cfg.py'] + argv)
        assert message in capsys.readouterr().err


def test_a_detector_batched_by_a_batch_sampler_is_recalibrated(
        synthetic_coco, tmp_path):
    # MMDetection's loaders batch with AspectRatioBatchSampler: the loader's
    # batch_size is None, the sampler's is the one to use
    from _helpers import DEMO_CONFIG, data_options
    from mmfca.frequency_selection import use_cell_sampling
    from mmfca.utils import build_runner, load_config
    module = load_tool('analysis_tools/fit_frequencies.py')
    # the tool's own parsing of --cfg-options; BN statistics to update
    args = module.parse_args(
        [DEMO_CONFIG, '--cfg-options'] + data_options(str(synthetic_coco))
        + ['model.backbone.norm_eval=False'])
    cfg = load_config(DEMO_CONFIG, args.cfg_options, str(tmp_path / 'work'))
    runner = build_runner(cfg)
    use_cell_sampling(runner.model)
    assert runner.train_dataloader.batch_size is None
    bn = runner.model.backbone.layer4[0].bn1
    before = bn.running_mean.clone()
    metrics = module.evaluate_cell(runner, (2, 3), 8)
    assert 'coco/bbox_mAP' in metrics
    assert not torch.equal(bn.running_mean, before)
