"""The analysis tools on the synthetic data with tiny settings."""
import glob
import json
import os.path as osp
import re
import subprocess

import pytest
import torch
from PIL import Image

from _helpers import DEMO_CONFIG, REPO, data_options, load_tool, run, tool
from _helpers.runner_configs import classification_cfg
from mmfca.datasets import make_synthetic_imagenet
from mmfca.models import FcaNet, MultiSpectralAttention
from mmfca.models.layers.dct import dct_filters

plot_dct_basis = load_tool('analysis_tools/plot_dct_basis.py').plot_dct_basis


def red_frames(png):
    """The grid's top-left corner (y, x) (the first black cell border below
    the title) and the top-left corners of the red frames drawn around the
    highlighted cells (red regions over 20x20 px; the red rank labels are
    smaller), top to bottom."""
    import numpy as np
    from scipy import ndimage
    with Image.open(png) as img:
        rgb = np.asarray(img.convert('RGB')).astype(int)
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    black = (rgb < 60).all(-1)
    black[:25] = False  # the title
    ys, xs = np.nonzero(black)
    boxes = ndimage.find_objects(ndimage.label(red)[0])
    return (ys.min(), xs.min()), sorted(
        (ys.start, xs.start) for ys, xs in boxes
        if ys.stop - ys.start > 20 and xs.stop - xs.start > 20)


def test_plot_dct_basis_png(tmp_path):
    out = str(tmp_path / 'basis.png')
    freqs = plot_dct_basis('low4', out, filter_size=14, dpi=50)
    assert freqs == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with Image.open(out) as img:
        assert img.size == (350, 370)  # 7 x 7.4 inches at 50 dpi
    # four frames, a 2x2 block in the top-left corner of the grid
    origin, frames = red_frames(out)
    (y0, x0), (_, x1), (y1, _), _ = frames
    assert len(frames) == 4
    assert abs(y0 - origin[0]) <= 5 and abs(x0 - origin[1]) <= 5
    pitch_y, pitch_x = y1 - y0, x1 - x0
    assert 30 < pitch_x < 50 and 30 < pitch_y < 50  # 7 cells in ~350 px
    freqs = plot_dct_basis([(3, 3), (6, 0)], out, filter_size=7, dpi=50)
    assert freqs == [(3, 3), (6, 0)]
    # exactly those cells framed: (row u, column v) of the same grid
    origin, frames = red_frames(out)
    cells = [(round((y - origin[0]) / pitch_y),
              round((x - origin[1]) / pitch_x)) for y, x in frames]
    assert cells == [(3, 3), (6, 0)]


@pytest.fixture(scope='module')
def cls_config(module_tmp_path):
    """FcaNet-18 classification config on the synthetic ImageNet set."""
    root = module_tmp_path
    data = make_synthetic_imagenet(str(root / 'data'), num_train=8,
                                   num_val=12)
    cfg = classification_cfg('configs/fcanet/fcanet18_8xb32_in1k.py', data,
                             root / 'work')
    cfg.train_cfg.max_epochs = 1
    path = str(root / 'cls.py')
    cfg.dump(path)
    return path, str(root / 'work')


@pytest.mark.slow
def test_frequency_ablation_cells_heatmap_and_resume(cls_config, tmp_path):
    config, _ = cls_config
    out = str(tmp_path / 'ablation')
    args = tool('analysis_tools/frequency_ablation.py') + [
        config, '--out-dir', out, '--cells', '0,0 0,1 1,0 1,1',
        '--max-epochs', '1'
    ]
    run(args)
    cells = sorted(glob.glob(osp.join(out, 'cells', '*.json')))
    assert len(cells) == 4
    records = [json.load(open(p)) for p in cells]
    heat = json.load(open(osp.join(out, 'heatmap.json')))
    assert heat['metric'] == 'accuracy/top1'
    for rec in records:
        assert heat['grid'][rec['u']][rec['v']] == rec['value']
    nan_cells = sum(x != x for row in heat['grid'] for x in row)
    assert nan_cells == 49 - 4
    ranking = json.load(open(osp.join(out, 'ranking.json')))
    assert sorted(map(tuple, ranking['pairs'])) == [(0, 0), (0, 1), (1, 0),
                                                    (1, 1)]
    assert ranking['values'] == sorted(ranking['values'], reverse=True)
    # the ranked list is a valid explicit frequency list
    MultiSpectralAttention(64, 7, 7, 4, [tuple(p) for p in ranking['pairs']])
    with Image.open(osp.join(out, 'heatmap.png')) as img:
        assert img.size == (500, 440)
    # each cell's model used its single frequency (stage 1: 56x56 filter)
    ckpt = torch.load(osp.join(out, 'runs', 'u1_v0', 'epoch_1.pth'),
                      weights_only=False, map_location='cpu')
    filt = ckpt['state_dict']['backbone.layer1.0.att.dct_layer.weight']
    torch.testing.assert_close(
        filt, dct_filters(56, 56, [(8, 0)]).float().expand(64, 56, 56))
    # restart: finished cells are skipped
    again = run(args)
    assert again.stdout.count('done earlier; skipped') == 4
    assert 'Epoch(train)' not in again.stdout


#: A progress line of the ablation: cell k of n (u, v), the metric, the
#: time so far and, unless it is the last cell, about how long is left.
PROGRESS = re.compile(
    r'\[ablation\] cell (\d+) of (\d+) \((\d), (\d)\): (\S+) (\S+), '
    r'\d+:\d\d:\d\d elapsed(, about \d+:\d\d:\d\d left)?$')


@pytest.mark.slow
def test_frequency_ablation_console_on_the_demo_config(synthetic_coco,
                                                       tmp_path):
    # the demo's detector, two cells of one epoch (2 iterations) each
    out = str(tmp_path / 'ablation')
    proc = run(tool('analysis_tools/frequency_ablation.py') + [
        DEMO_CONFIG, '--out-dir', out, '--cells', '0,0 0,1',
        '--max-epochs', '1', '--cfg-options'
    ] + data_options(synthetic_coco))
    lines = proc.stdout.splitlines()
    # nothing of the runs on the console: no MMEngine log line, no
    # pycocotools table, no warning; only the tool's own lines
    assert all(line.startswith('[ablation] ') for line in lines), lines
    progress = [PROGRESS.match(line) for line in lines]
    progress = [m.groups() for m in progress if m]
    assert [g[:5] for g in progress] == [
        ('1', '2', '0', '0', 'coco/bbox_mAP'),
        ('2', '2', '0', '1', 'coco/bbox_mAP')]
    # time left after the first cell, none after the last
    assert progress[0][6] is not None and progress[1][6] is None
    values = {}
    for _, _, u, v, _, shown, _ in progress:
        with open(osp.join(out, 'cells', f'u{u}_v{v}.json')) as f:
            record = json.load(f)
        assert shown == f'{record["value"]:.4g}'
        values[(int(u), int(v))] = record['value']
    # each run's whole output in its own folder: MMEngine's log (the
    # config with the cell's frequency, training, validation) and the
    # pycocotools tables
    for u, v in values:
        run_dir = osp.join(out, 'runs', f'u{u}_v{v}')
        with open(osp.join(run_dir, 'output.log')) as f:
            output = f.read()
        assert re.search(rf'freq_sel_method=\[\s*\(\s*{u},\s*{v},\s*\),'
                         r'\s*\]', output)
        assert f"experiment_name = 'freq_ablation_u{u}_v{v}'" in output
        assert 'Average Precision' in output and 'Epoch(train)' in output
        # MMEngine's own log of the run, in the run's folder, is in it
        # (the console's date is shorter); one validation, after training
        # (the run's visualizer wrote there too, not into another run's)
        mmengine_log, = glob.glob(osp.join(run_dir, '*', '*.log'))
        with open(mmengine_log) as f:
            val_lines = [line.split(' - INFO - ')[1] for line in f
                         if 'Epoch(val)' in line]
        assert len(val_lines) == 1 and output.count('Epoch(val)') == 1
        assert val_lines[0] in output
        assert glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))
    # the ranking, best first, as ranking.json has it
    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    assert lines[-2] == '[ablation] coco/bbox_mAP, best first: ' + ', '.join(
        f'({u},{v}) {x:.4g}' for (u, v), x in ranked)
    assert lines[-1] == f'[ablation] {osp.join(out, "heatmap.png")}'
    assert osp.isfile(osp.join(out, 'heatmap.png'))


@pytest.mark.slow
def test_frequency_ablation_names_the_failed_cell(cls_config, tmp_path):
    config, _ = cls_config
    out = str(tmp_path / 'ablation')
    proc = subprocess.run(
        tool('analysis_tools/frequency_ablation.py') + [
            config, '--out-dir', out, '--cells', '1,1 2,2',
            '--max-epochs', '1', '--metric', 'accuracy/top9'],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=900)
    assert proc.returncode == 1
    log = osp.join(out, 'runs', 'u1_v1', 'output.log')
    # the cell, the reason (the run's last line) and the log; no traceback
    assert proc.stdout.splitlines()[1:] == [
        '[ablation] cell 1 of 2 (1, 1) failed: KeyError: "Metric '
        "'accuracy/top9' not among the validation results "
        "['accuracy/top1', 'accuracy/top5']; pass --metric.\"",
        f'[ablation] its log: {log}']
    with open(log) as f:
        output = f.read()
    assert 'Epoch(train)' in output and 'Traceback' in output
    # the tool stopped there: no record, the next cell not started
    assert not glob.glob(osp.join(out, 'cells', '*.json'))
    assert not osp.exists(osp.join(out, 'runs', 'u2_v2'))


@pytest.mark.slow
def test_visualize_attention(cls_config, tmp_path):
    config, work = cls_config
    # train one epoch to get a checkpoint of our own run
    run(tool('train.py') + [config, '--work-dir', work, '--overwrite'])
    ckpt = osp.join(work, 'epoch_1.pth')
    image = glob.glob(osp.join(osp.dirname(config), 'data', 'val', '*',
                               '*.png'))[0]
    out = str(tmp_path / 'att.png')
    # no --work-dir: the training checkpoint loads through the safe loader
    proc = run(tool('analysis_tools/visualize_attention.py') + [
        config, ckpt, image, '--out', out, '--size', '64'
    ])
    assert f'Loads checkpoint by weights_only backend from path: {ckpt}' \
        in proc.stdout
    assert '4 stages' in proc.stdout
    with Image.open(out) as img:
        assert img.size == (1100, 900)  # 11 x 2.25 * 4 inches at 100 dpi


@pytest.mark.parametrize('learnable,init', [(True, 'dct'), (True, 'random'),
                                            (False, 'random')])
def test_filter_variants(learnable, init):
    torch.manual_seed(0)
    layer = MultiSpectralAttention(16, 7, 7, 4, 'top4',
                                   learnable_filter=learnable,
                                   filter_init=init)
    weight = layer.dct_layer.weight
    assert isinstance(weight, torch.nn.Parameter) == learnable
    x = torch.randn(2, 16, 9, 11)
    layer(x).sum().backward()
    if learnable:
        assert weight.grad is not None and weight.grad.abs().sum() > 0
    else:
        assert weight.grad is None and not weight.requires_grad
    # the general path computes the pooled filter exactly
    pooled = torch.nn.functional.adaptive_avg_pool2d(x, 7)
    y = (pooled * weight).sum((2, 3))
    torch.testing.assert_close(layer.dct_layer(x), y, rtol=1e-5, atol=1e-5)


def test_fixed_dct_filter_gets_no_gradient_and_backbone_switches():
    # the method's filter: a buffer that backward and an optimizer step
    # leave alone, while the input and the FC layers get gradients
    fixed = MultiSpectralAttention(16, 7, 7, 4)
    before = fixed.dct_layer.weight.clone()
    x = torch.randn(2, 16, 7, 7, requires_grad=True)
    fixed(x).square().sum().backward()
    assert fixed.dct_layer.weight.grad is None
    assert not fixed.dct_layer.weight.requires_grad
    assert 'dct_layer.weight' not in dict(fixed.named_parameters())
    assert x.grad.abs().sum() > 0 and fixed.fc[0].weight.grad.abs().sum() > 0
    torch.optim.SGD(fixed.parameters(), lr=10.).step()
    assert torch.equal(fixed.dct_layer.weight, before)
    # the backbone's switch reaches every layer, both ways
    atts = [m for m in FcaNet(18).modules()
            if isinstance(m, MultiSpectralAttention)]
    assert len(atts) == 8 and not any(
        a.dct_layer.weight.requires_grad for a in atts)
    model = FcaNet(18, learnable_filter=True, filter_init='random')
    atts = [m for m in model.modules()
            if isinstance(m, MultiSpectralAttention)]
    assert len(atts) == 8 and all(
        isinstance(a.dct_layer.weight, torch.nn.Parameter) for a in atts)
    with pytest.raises(ValueError, match="filter_init 'gauss'"):
        MultiSpectralAttention(16, filter_init='gauss')


@pytest.mark.parametrize('name', ['plot_dct_basis', 'frequency_ablation',
                                  'visualize_attention'])
def test_help_shows_the_whole_description(name, capsys):
    module = load_tool(f'analysis_tools/{name}.py')
    with pytest.raises(SystemExit):
        module.main(['-h'])
    out = ' '.join(capsys.readouterr().out.split())
    first = ' '.join(module.__doc__.split('\n\n')[0].split())
    assert first.endswith('.') and first in out
