# Copyright (c) mmfca contributors. All rights reserved.
"""Redo the paper's frequency selection on your data: train the config
once per single DCT frequency (u, v) of the 7x7 grid, rank the cells by the
validation metric, and write a heatmap and a ranked list.

    python tools/analysis_tools/frequency_ablation.py CONFIG \\
        --out-dir work_dirs/freq_ablation [--cells "0,0 1,1"] \\
        [--max-epochs 10] [--metric accuracy/top1]

Every backbone FCA layer gets ``freq_sel_method=[(u, v)]``. Results go to
``OUT/cells/u{u}_v{v}.json``; finished cells are skipped on restart. The
ranked list (``OUT/ranking.json``, best first) can be passed back as an
explicit frequency list: ``freq_sel_method=<its "pairs"[:n]>``.
"""
import argparse
import json
import math
import os
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from mmfca.models.layers.dct import FREQ_GRID  # noqa: E402
from mmfca.utils import build_runner, load_config  # noqa: E402

#: Metric used when --metric is not given, per library.
DEFAULT_METRICS = {
    'mmpretrain': 'accuracy/top1',
    'mmdet': 'coco/bbox_mAP',
    'mmseg': 'mIoU'
}


def parse_cells(text):
    """``"0,0 1,2"`` -> [(0, 0), (1, 2)]; None -> the whole 7x7 grid."""
    if not text:
        return [(u, v) for u in range(FREQ_GRID) for v in range(FREQ_GRID)]
    cells = []
    for item in text.split():
        u, v = (int(t) for t in item.split(','))
        if not (0 <= u < FREQ_GRID and 0 <= v < FREQ_GRID):
            raise ValueError(f'Cell {item!r} is outside the 7x7 grid.')
        cells.append((u, v))
    return cells


def cell_path(out_dir, u, v):
    return osp.join(out_dir, 'cells', f'u{u}_v{v}.json')


def run_cell(args, u, v):
    """Train and validate one single-frequency model; return the metrics."""
    work_dir = osp.join(args.out_dir, 'runs', f'u{u}_v{v}')
    cfg = load_config(args.config, args.cfg_options, work_dir)
    cfg.model.backbone.freq_sel_method = [(u, v)]
    cfg.experiment_name = f'freq_ablation_u{u}_v{v}'
    loop = cfg.train_cfg
    if args.max_epochs is not None:
        loop.max_epochs = args.max_epochs
    if args.max_iters is not None:
        loop.max_iters = args.max_iters
    # validate once, after training
    loop.val_interval = 10**9
    runner = build_runner(cfg)
    runner.train()
    return runner.val_loop.run()


def write_heatmap(results, metric, out_dir):
    """Heatmap PNG + its values (heatmap.json) + ranking.json."""
    grid = [[math.nan] * FREQ_GRID for _ in range(FREQ_GRID)]
    for (u, v), value in results.items():
        grid[u][v] = value
    with open(osp.join(out_dir, 'heatmap.json'), 'w') as f:
        json.dump(dict(metric=metric, grid=grid), f, indent=1)
    ranked = sorted(results.items(), key=lambda kv: -kv[1])
    with open(osp.join(out_dir, 'ranking.json'), 'w') as f:
        json.dump(dict(metric=metric, pairs=[list(p) for p, _ in ranked],
                       values=[v for _, v in ranked]), f, indent=1)
    fig, ax = plt.subplots(figsize=(5, 4.4))
    image = ax.imshow(grid, cmap='viridis')
    for (u, v), value in results.items():
        ax.text(v, u, f'{value:.3g}', ha='center', va='center', fontsize=7,
                color='white')
    ax.set_xticks(range(FREQ_GRID))
    ax.set_yticks(range(FREQ_GRID))
    ax.set_xlabel('v (width frequency)')
    ax.set_ylabel('u (height frequency)')
    ax.set_title(f'single-frequency {metric}')
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'heatmap.png'), dpi=100)
    plt.close(fig)
    return ranked


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--out-dir', default='work_dirs/freq_ablation')
    parser.add_argument('--cells', help='subset, e.g. "0,0 0,1 1,0 1,1"')
    parser.add_argument('--max-epochs', type=int,
                        help='shorten an epoch-based schedule')
    parser.add_argument('--max-iters', type=int,
                        help='shorten an iteration-based schedule')
    parser.add_argument('--metric', help='validation metric to rank by')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)

    cfg = load_config(args.config, args.cfg_options)
    metric = args.metric or DEFAULT_METRICS.get(cfg.get('default_scope'))
    if metric is None:
        raise ValueError('Pass --metric: no default for scope '
                         f'{cfg.get("default_scope")!r}.')
    os.makedirs(osp.join(args.out_dir, 'cells'), exist_ok=True)
    results = {}
    for u, v in parse_cells(args.cells):
        path = cell_path(args.out_dir, u, v)
        if osp.isfile(path):
            print(f'[ablation] cell ({u}, {v}) done earlier; skipped')
        else:
            metrics = run_cell(args, u, v)
            if metric not in metrics:
                raise KeyError(f'Metric {metric!r} not among the validation '
                               f'results {sorted(metrics)}; pass --metric.')
            record = dict(u=u, v=v, metric=metric,
                          value=float(metrics[metric]),
                          metrics={k: float(x) for k, x in metrics.items()})
            tmp = path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(record, f, indent=1)
            os.replace(tmp, path)  # a cell counts as done only when whole
    # every finished cell of this out-dir, also from earlier invocations
    for name in sorted(os.listdir(osp.join(args.out_dir, 'cells'))):
        if name.endswith('.json'):
            with open(osp.join(args.out_dir, 'cells', name)) as f:
                record = json.load(f)
            results[(record['u'], record['v'])] = record['value']
    ranked = write_heatmap(results, metric, args.out_dir)
    print(f'[ablation] {metric}, best first: ' +
          ', '.join(f'({u},{v}) {x:.4g}' for (u, v), x in ranked))
    print(f'[ablation] {osp.join(args.out_dir, "heatmap.png")}')


if __name__ == '__main__':
    main()
