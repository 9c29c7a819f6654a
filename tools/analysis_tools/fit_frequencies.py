# Copyright (c) mmfca contributors. All rights reserved.
"""Rank the 49 DCT frequencies of the 7x7 grid on your data with one
training: a weight-shared single-frequency FcaNet, then each cell evaluated
with the shared weights.

    python tools/analysis_tools/fit_frequencies.py CONFIG \\
        --out-dir work_dirs/freq_fit [--max-epochs 10] [--num-freqs 16] \\
        [--metric accuracy/top1] [--cfg-options ...]

During training every image draws one cell (u, v) uniformly and every FCA
layer of the backbone squeezes it with that cell alone, the network of the
paper's single-frequency ablation (``freq_sel_method=[(u, v)]``) with one
set of weights for all 49 but two things of each cell's own: a
channel-wise scale of its squeeze (learnt) and its BN statistics
(re-estimated on ``--bn-samples`` training images before it is
evaluated). After training, the config's validation loop runs once per
cell with that cell fixed, and the cells are ranked by the validation
metric (``--metric``, default per library). Written as the
ablation tool (frequency_ablation.py) writes them: ``OUT/cells/u{u}_v{v}
.json``, ``OUT/ranking.json`` (best first; ``"pairs"[:n]`` is a
``freq_sel_method``), ``OUT/heatmap.png``; plus ``OUT/freq_sel_method.py``,
the config lines with the first ``--num-freqs`` pairs. Train the chosen
list as a normal FcaNet (fixed DCT filters).

The console shows where the job stands (training: iteration k of n with
the time left; then a line per cell with its metric and the time left), the
ranking and the snippet. The run's whole output (MMEngine's log, the
evaluations) goes to ``OUT/run/output.log`` beside its checkpoints. A rerun
with the same out-dir keeps what is done: the trained weights
(``OUT/run/fitted.pth``) are not trained again and evaluated cells are
skipped.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

from mmengine.config import DictAction
from mmengine.hooks import Hook
from mmpretrain.engine.hooks.precise_bn_hook import update_bn_stats

from mmfca.frequency_selection import (DEFAULT_METRICS, GRID_CELLS,
                                       CellSamplingHook, cell_path, duration,
                                       read_records, set_cell,
                                       use_cell_sampling,
                                       validate_after_training, write_heatmap,
                                       write_record, write_snippet)
from mmfca.utils import build_runner, load_config

PREFIX = '[fit] '


def say(text):
    """A progress line: the parent process shows these on the console."""
    print(PREFIX + text, flush=True)


class ProgressHook(Hook):
    """Print ``[fit] training: iteration k of n`` about ten times in a run,
    with the time so far and about how long the rest will take."""
    priority = 'VERY_LOW'

    def before_train(self, runner):
        self.start, self.first = time.time(), runner.iter
        self.step = max(1, runner.max_iters // 10)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        done, total = runner.iter + 1, runner.max_iters
        if done % self.step and done != total:
            return
        elapsed = time.time() - self.start
        left = elapsed / (done - self.first) * (total - done)
        eta = f', about {duration(left)} left' if done < total else ''
        say(f'training: iteration {done} of {total}, {duration(elapsed)} '
            f'elapsed{eta}')


class BatchSizedLoader:
    """A data loader whose batches come from a batch sampler (MMDetection's
    ``AspectRatioBatchSampler``), with the ``batch_size`` that MMPretrain's
    ``update_bn_stats`` reads (the loader's own is None then)."""

    def __init__(self, loader):
        self.loader = loader
        self.batch_size = loader.batch_sampler.batch_size

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def evaluate_cell(runner, cell, bn_samples):
    """The validation metrics of one cell's network: ``cell`` set in every
    FCA layer, and the BN statistics re-estimated on ``bn_samples``
    training images with it (the statistics of this cell's
    network, not of the mixture trained: a one-shot supernet's usual
    step); 0 keeps those of the training."""
    set_cell(runner.model, cell)
    if bn_samples:
        runner.model.train()
        loader = runner.train_dataloader
        if loader.batch_size is None:
            loader = BatchSizedLoader(loader)
        update_bn_stats(runner.model, loader, bn_samples, logger='silent')
    return runner.val_loop.run()


def fit(args):
    """Train the weight-shared network (unless ``fitted.pth`` is there),
    then evaluate every cell that has no record yet (this process)."""
    work_dir = osp.join(args.out_dir, 'run')
    fitted = osp.join(work_dir, 'fitted.pth')
    cfg = load_config(args.config, args.cfg_options, work_dir)
    cfg.experiment_name = 'fit_frequencies'
    # validated only after training, once per cell (here)
    validate_after_training(cfg, args.max_epochs, args.max_iters)
    if osp.isfile(fitted):
        cfg.load_from, cfg.resume = fitted, False
    runner = build_runner(cfg)
    layers = use_cell_sampling(runner.model)
    if osp.isfile(fitted):
        say(f'trained weights found: {fitted}; not trained again')
        runner.load_or_resume()
    else:
        say(f'training once, {layers} FCA layers, one cell of the 49 per '
            'image')
        runner.register_hook(CellSamplingHook(args.seed, args.sampling))
        runner.register_hook(ProgressHook())
        runner.train()
        runner.save_checkpoint(work_dir, 'fitted.pth', save_optimizer=False,
                               save_param_scheduler=False)
    todo = [c for c in GRID_CELLS if not osp.isfile(cell_path(args.out_dir,
                                                              *c))]
    start = time.time()
    for k, (u, v) in enumerate(GRID_CELLS, 1):
        if (u, v) not in todo:
            continue
        metrics = evaluate_cell(runner, (u, v), args.bn_samples)
        value = write_record(args.out_dir, u, v, args.metric,
                             metrics)['value']
        done = todo.index((u, v)) + 1
        elapsed = time.time() - start
        eta = f', about {duration(elapsed / done * (len(todo) - done))} ' \
            'left' if done < len(todo) else ''
        say(f'cell {k} of {len(GRID_CELLS)} ({u}, {v}): {args.metric} '
            f'{value:.4g}, {duration(elapsed)} elapsed{eta}')
    set_cell(runner.model, None)


def spawn(argv, metric, log):
    """Run the fitting in a new process; its output goes to ``log``
    (appended), its ``[fit]`` lines also to the console. Returns None if
    it finished, else why not (its last line, or the signal)."""
    os.makedirs(osp.dirname(log), exist_ok=True)
    cmd = [sys.executable, osp.abspath(__file__)] + list(argv) + [
        '--metric', metric, '--in-process']
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    last = ''
    with open(log, 'a') as f, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            text=True, errors='replace') as proc:
        try:
            for line in proc.stdout:
                f.write(line)
                f.flush()
                if line.startswith(PREFIX):
                    print(line, end='', flush=True)
                if line.strip():
                    last = line.strip()
        except KeyboardInterrupt:
            proc.kill()
            raise
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        return f'killed by signal {-proc.returncode}'
    return last or f'exit status {proc.returncode}'


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config to train')
    parser.add_argument('--out-dir', default='work_dirs/freq_fit',
                        help='where the run, cells, heatmap, ranking and '
                        'snippet go')
    parser.add_argument('--max-epochs', type=int,
                        help='shorten an epoch-based schedule')
    parser.add_argument('--max-iters', type=int,
                        help='shorten an iteration-based schedule')
    parser.add_argument('--num-freqs', type=int, default=16,
                        help='how many ranked cells the snippet takes '
                        '(default 16, as the published models)')
    parser.add_argument('--metric', help='validation metric to rank by')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the cells drawn during training')
    parser.add_argument('--sampling', default='image',
                        choices=('image', 'batch'),
                        help='draw a cell per image (default) or per batch')
    parser.add_argument('--bn-samples', type=int, default=128,
                        help='training images that re-estimate the BN '
                        'statistics of each cell before it is evaluated '
                        '(default 128; 0: keep those of the training)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    # how the tool starts itself: train and evaluate in this process
    parser.add_argument('--in-process', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bn_samples < 0:
        parser.error(f'--bn-samples {args.bn_samples} is negative; 0 keeps '
                     'the training\'s BN statistics.')
    if not 1 <= args.num_freqs <= len(GRID_CELLS):
        parser.error(f'--num-freqs {args.num_freqs} is not in [1, '
                     f'{len(GRID_CELLS)}].')
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.in_process:
        fit(args)
        return
    cfg = load_config(args.config, args.cfg_options)
    metric = args.metric or DEFAULT_METRICS.get(cfg.get('default_scope'))
    if metric is None:
        raise ValueError('Pass --metric: no default for scope '
                         f'{cfg.get("default_scope")!r}.')
    log = osp.join(args.out_dir, 'run', 'output.log')
    done = read_records(args.out_dir)
    if len(done) < len(GRID_CELLS):
        say(f'{len(GRID_CELLS) - len(done)} of {len(GRID_CELLS)} cells to '
            f'rank by {metric}; the run\'s log: {log}')
        try:
            error = spawn(argv, metric, log)
        except KeyboardInterrupt:
            raise SystemExit(f'{PREFIX}interrupted; the log: {log}. Rerun '
                             'to go on (trained weights and evaluated cells '
                             'are kept).')
        if error is not None:
            raise SystemExit(f'{PREFIX}failed: {error}\n{PREFIX}the log: '
                             f'{log}')
        done = read_records(args.out_dir)
    else:
        say(f'all {len(GRID_CELLS)} cells ranked earlier')
    ranked = write_heatmap(done, metric, args.out_dir,
                           title='weight-shared single-frequency')
    say(f'{metric}, best first: ' + ', '.join(
        f'({u},{v}) {x:.4g}' for (u, v), x in ranked))
    path, snippet = write_snippet(args.out_dir, [p for p, _ in ranked],
                                  args.num_freqs)
    say(f"{path}:")
    for line in snippet.rstrip().splitlines():
        say(line)
    say(osp.join(args.out_dir, 'heatmap.png'))


if __name__ == '__main__':
    main()
