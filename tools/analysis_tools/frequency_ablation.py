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

The console shows a line per cell (k of n, its metric, the time so far and
about how long the rest will take, from the mean of the cells trained so
far), then the ranking. Each cell trains in a process of its own (nothing
of one run, such as its visualizer, leaks into the next) whose whole
output, MMEngine's log and the evaluation's tables, goes to
``OUT/runs/u{u}_v{v}/output.log`` beside the run's checkpoint. A cell that
fails stops the tool with the cell and its log named; a rerun skips the
finished cells.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

from mmengine.config import DictAction

from mmfca.frequency_selection import (DEFAULT_METRICS, cell_path, duration,
                                       read_records, validate_after_training,
                                       write_heatmap)
from mmfca.frequency_selection import write_record as write_cell_record
from mmfca.models.layers.dct import FREQ_GRID
from mmfca.utils import build_runner, load_config


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


def run_dir(out_dir, u, v):
    """The work dir of a cell's run: ``OUT/runs/u{u}_v{v}``."""
    return osp.join(out_dir, 'runs', f'u{u}_v{v}')


def log_path(out_dir, u, v):
    """Where a cell's process writes its whole output (appended to on a
    rerun): ``OUT/runs/u{u}_v{v}/output.log``."""
    return osp.join(run_dir(out_dir, u, v), 'output.log')


def run_cell(args, u, v):
    """Train and validate one single-frequency model; return the metrics."""
    work_dir = run_dir(args.out_dir, u, v)
    cfg = load_config(args.config, args.cfg_options, work_dir)
    cfg.model.backbone.freq_sel_method = [(u, v)]
    cfg.experiment_name = f'freq_ablation_u{u}_v{v}'
    validate_after_training(cfg, args.max_epochs, args.max_iters)
    runner = build_runner(cfg)
    runner.train()
    return runner.val_loop.run()


def write_record(args, u, v, metric):
    """Run cell ``(u, v)`` in this process and write its record (the
    tool's process per cell does this).

    Raises:
        KeyError: If ``metric`` is not among the validation results.
    """
    return write_cell_record(args.out_dir, u, v, metric,
                             run_cell(args, u, v))


def spawn_cell(argv, u, v, metric, log):
    """Run the tool for cell ``(u, v)`` alone in a new process, its output
    appended to ``log``.

    Args:
        argv (list[str]): This invocation's arguments; the child gets them
            with ``--cells "u,v" --metric METRIC --one-cell`` added (the
            last value of an option wins).
        u (int): Height frequency of the cell.
        v (int): Width frequency of the cell.
        metric (str): The metric to record.
        log (str): The file that gets the child's stdout and stderr.

    Returns:
        str or None: None if the cell finished, else why it failed: the
        last line of its output (e.g. the exception), or the signal that
        killed it.
    """
    os.makedirs(osp.dirname(log), exist_ok=True)
    cmd = [sys.executable, osp.abspath(__file__)] + list(argv) + [
        '--cells', f'{u},{v}', '--metric', metric, '--one-cell']
    with open(log, 'a') as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if code == 0:
        return None
    if code < 0:
        return f'killed by signal {-code}'
    with open(log, 'rb') as f:
        f.seek(max(0, osp.getsize(log) - 4096))
        lines = f.read().decode(errors='replace').strip().splitlines()
    return lines[-1].strip() if lines else f'exit status {code}'


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config to train')
    parser.add_argument('--out-dir', default='work_dirs/freq_ablation',
                        help='where the cells, runs, heatmap and ranking '
                        'go')
    parser.add_argument('--cells', help='subset, e.g. "0,0 0,1 1,0 1,1"; '
                        'default: all 49')
    parser.add_argument('--max-epochs', type=int,
                        help='shorten an epoch-based schedule')
    parser.add_argument('--max-iters', type=int,
                        help='shorten an iteration-based schedule')
    parser.add_argument('--metric', help='validation metric to rank by')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    # how the tool starts itself for each cell: train the one cell of
    # --cells in this process and write its record, nothing else
    parser.add_argument('--one-cell', action='store_true',
                        help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)

    cells = list(dict.fromkeys(parse_cells(args.cells)))  # each cell once
    if args.one_cell:
        if len(cells) != 1 or args.metric is None:
            parser.error('--one-cell takes one cell and --metric')
        write_record(args, *cells[0], args.metric)
        return
    cfg = load_config(args.config, args.cfg_options)
    metric = args.metric or DEFAULT_METRICS.get(cfg.get('default_scope'))
    if metric is None:
        raise ValueError('Pass --metric: no default for scope '
                         f'{cfg.get("default_scope")!r}.')
    os.makedirs(osp.join(args.out_dir, 'cells'), exist_ok=True)
    todo = [c for c in cells if not osp.isfile(cell_path(args.out_dir, *c))]
    print(f'[ablation] {len(todo)} of {len(cells)} cells to train, ranked '
          f'by {metric}; each run\'s log: '
          f'{log_path(args.out_dir, "{u}", "{v}")}', flush=True)
    start, trained = time.time(), 0
    for k, (u, v) in enumerate(cells, 1):
        cell = f'cell {k} of {len(cells)} ({u}, {v})'
        if (u, v) not in todo:
            print(f'[ablation] {cell} done earlier; skipped', flush=True)
            continue
        log = log_path(args.out_dir, u, v)
        try:
            error = spawn_cell(argv, u, v, metric, log)
        except KeyboardInterrupt:
            raise SystemExit(f'[ablation] interrupted in {cell}; its log: '
                             f'{log}. Finished cells are kept: rerun to go '
                             f'on.')
        if error is not None:
            raise SystemExit(f'[ablation] {cell} failed: {error}\n'
                             f'[ablation] its log: {log}')
        trained += 1
        with open(cell_path(args.out_dir, u, v)) as f:
            value = json.load(f)['value']
        elapsed = time.time() - start
        left = len(todo) - trained
        eta = f', about {duration(elapsed / trained * left)} left' \
            if left else ''
        print(f'[ablation] {cell}: {metric} {value:.4g}, '
              f'{duration(elapsed)} elapsed{eta}', flush=True)
    # every finished cell of this out-dir, also from earlier invocations
    results = read_records(args.out_dir)
    ranked = write_heatmap(results, metric, args.out_dir)
    print(f'[ablation] {metric}, best first: ' +
          ', '.join(f'({u},{v}) {x:.4g}' for (u, v), x in ranked))
    print(f'[ablation] {osp.join(args.out_dir, "heatmap.png")}')


if __name__ == '__main__':
    main()
