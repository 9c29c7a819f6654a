# Copyright (c) mmfca contributors. All rights reserved.
"""What the frequency tools write: a record per 7x7-grid cell
(``OUT/cells/u{u}_v{v}.json``), the heatmap (``heatmap.png`` and its values
``heatmap.json``), the ranking (``ranking.json``, best first, whose
``"pairs"[:n]`` is a ``freq_sel_method``) and the config snippet
(``freq_sel_method.py``)."""
import datetime
import json
import math
import os
import os.path as osp

from mmfca.models.layers.dct import FREQ_GRID

#: Metric to rank by when none is given, per library (``default_scope``).
DEFAULT_METRICS = {
    'mmpretrain': 'accuracy/top1',
    'mmdet': 'coco/bbox_mAP',
    'mmseg': 'mIoU'
}


def validate_after_training(cfg, max_epochs=None, max_iters=None):
    """Set ``cfg``'s training length (the tools' ``--max-epochs`` /
    ``--max-iters``, None: the config's) and leave validation to the
    tools, once after training: MMEngine's train loops validate at their
    last epoch (iteration) whatever ``val_interval`` says, unless it comes
    before ``val_begin``."""
    loop = cfg.train_cfg
    if max_epochs is not None:
        loop.max_epochs = max_epochs
    if max_iters is not None:
        loop.max_iters = max_iters
    loop.val_begin = 10**9


def cell_path(out_dir, u, v):
    """The record of a finished cell: ``OUT/cells/u{u}_v{v}.json``."""
    return osp.join(out_dir, 'cells', f'u{u}_v{v}.json')


def duration(seconds):
    """``seconds`` as MMEngine writes its eta: ``H:MM:SS``."""
    return str(datetime.timedelta(seconds=round(seconds)))


def write_record(out_dir, u, v, metric, metrics):
    """Write cell ``(u, v)``'s record (whole or not at all).

    Args:
        out_dir (str): The tool's output folder.
        u (int): Height frequency of the cell.
        v (int): Width frequency of the cell.
        metric (str): The metric the cells are ranked by.
        metrics (dict): The validation results.

    Returns:
        dict: The record: ``u``, ``v``, ``metric``, its ``value`` and all
        ``metrics``.

    Raises:
        KeyError: If ``metric`` is not among ``metrics``.
    """
    if metric not in metrics:
        raise KeyError(f'Metric {metric!r} not among the validation '
                       f'results {sorted(metrics)}; pass --metric.')
    record = dict(u=u, v=v, metric=metric, value=float(metrics[metric]),
                  metrics={k: float(x) for k, x in metrics.items()})
    path = cell_path(out_dir, u, v)
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, path)  # a cell counts as done only when whole
    return record


def read_records(out_dir, metric=None):
    """``{(u, v): value}`` of every cell record in ``OUT/cells``.

    Args:
        out_dir (str): The tool's output folder.
        metric (str, optional): The metric every record must be ranked by
            (None: any).

    Raises:
        ValueError: If a record was ranked by another metric (another
            method or ``--metric`` wrote into ``out_dir``).
    """
    results = {}
    folder = osp.join(out_dir, 'cells')
    for name in sorted(os.listdir(folder)) if osp.isdir(folder) else []:
        if name.endswith('.json'):
            with open(osp.join(folder, name)) as f:
                record = json.load(f)
            if metric is not None and record['metric'] != metric:
                raise ValueError(
                    f'{osp.join(folder, name)} ranks by '
                    f'{record["metric"]!r}, not {metric!r}: {out_dir} '
                    'holds another ranking; pass another --out-dir.')
            results[(record['u'], record['v'])] = record['value']
    return results


def write_heatmap(results, metric, out_dir, title='single-frequency'):
    """Write ``heatmap.png``, its values (``heatmap.json``) and
    ``ranking.json`` (pairs and values, best first; ties keep the order
    of ``results``).

    Args:
        results (dict): ``{(u, v): value}``, higher is better.
        metric (str): The metric's name.
        out_dir (str): Where the files go.
        title (str): The heatmap's title, before the metric's name.

    Returns:
        list: ``[((u, v), value), ...]``, best first.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

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
    ax.set_title(f'{title} {metric}')
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'heatmap.png'), dpi=100)
    plt.close(fig)
    return ranked


def write_snippet(out_dir, pairs, num_freqs=16):
    """Write ``freq_sel_method.py``: the config lines that train FcaNet
    with the first ``num_freqs`` ranked pairs (fixed DCT filters).

    Args:
        out_dir (str): Where the file goes.
        pairs (list): Ranked ``(u, v)`` pairs, best first.
        num_freqs (int): How many to take. Defaults to 16.

    Returns:
        tuple[str, str]: The file's path and the snippet.
    """
    chosen = ', '.join(f'({u}, {v})' for u, v in pairs[:num_freqs])
    snippet = (f'# the {num_freqs} best-ranked cells, best first\n'
               f'model = dict(backbone=dict(freq_sel_method=[{chosen}]))\n')
    path = osp.join(out_dir, 'freq_sel_method.py')
    with open(path, 'w') as f:
        f.write(snippet)
    return path, snippet
