"""The analysis tools on the synthetic data with tiny settings."""
import glob
import json
import os.path as osp

import pytest
import torch
from PIL import Image

from _helpers import load_tool, run, tool
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
    atts = [m for m in model.modules() if isinstance(m, MultiSpectralAttention)]
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
