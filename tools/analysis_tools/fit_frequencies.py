# Copyright (c) mmfca contributors. All rights reserved.
"""Rank the 49 DCT frequencies of the 7x7 grid on your data without the
ablation's 49 trainings: by default with no training at all, each cell
scored by how much its squeeze reads of the labels.

    python tools/analysis_tools/fit_frequencies.py CONFIG \\
        --out-dir work_dirs/freq_fit [--method probe|sampling|gumbel] \\
        [--probe-images 1024] [--num-freqs 16] [--cfg-options ...]

``--method probe`` (default): for every FCA layer, channel and cell, the
cell's DCT term of the layer's input (what a single-frequency network,
``freq_sel_method=[(u, v)]``, would squeeze there) over the first
``--probe-images`` training images; a cell's score is its squared
correlation with each class's presence, averaged over classes, channels
and layers (``mmfca.frequency_selection.CellReadingProbe``). The model is
the one the config builds (its initialisation, residual branches alive,
then ``load_from`` if set), BN layers on batch statistics.

``--method sampling``: one training in which every image draws one cell
uniformly and every FCA layer squeezes it with that cell alone (one set of
weights for all 49 but each cell's channel-wise scale of its squeeze and
its BN statistics, re-estimated on ``--bn-samples`` training images);
then the config's validation loop once per cell, ranked by ``--metric``
(default per library). ``--method gumbel``: one training with selection
logits per FCA layer (Gumbel-softmax, hard draws, temperature
``--temperature``), ranked by each cell's log-probability averaged over
the layers.

Written as the ablation tool (frequency_ablation.py) writes them:
``OUT/cells/u{u}_v{v}.json``, ``OUT/ranking.json`` (best first;
``"pairs"[:n]`` is a ``freq_sel_method``), ``OUT/heatmap.png``; plus
``OUT/freq_sel_method.py``, the config lines with the first
``--num-freqs`` pairs. Train the chosen list as a normal FcaNet (fixed DCT
filters).

The console shows where the job stands (images probed, or training
iterations with the time left and a line per evaluated cell), the ranking
and the snippet. The run's whole output goes to ``OUT/run/output.log``
(beside the trained weights, ``OUT/run/fitted.pth``, gumbel's
``fitted_gumbel.pth``). A rerun with the
same out-dir keeps what is done: scored cells are skipped and trained
weights are not trained again.
"""
import argparse
import math
import os
import os.path as osp
import subprocess
import sys
import time

from mmengine.config import DictAction
from mmengine.hooks import Hook
from mmpretrain.engine.hooks.precise_bn_hook import update_bn_stats

from mmfca.frequency_selection import (DEFAULT_METRICS, GRID_CELLS,
                                       PROBE_METRIC, SELECTION_METRIC,
                                       CellReadingProbe, CellSamplingHook,
                                       CellSelectionHook,
                                       CellSelectionSqueeze, cell_path,
                                       duration, present_classes,
                                       read_records, selection_scores,
                                       set_cell, use_cell_sampling,
                                       validate_after_training, write_heatmap,
                                       write_record, write_snippet)
from mmfca.utils import build_runner, load_config

PREFIX = '[fit] '

#: How the cells are ranked: ``probe`` (no training: each cell's reading
#: of the labels in the model as built), ``sampling`` (one cell drawn
#: uniformly per image, then each cell evaluated) or ``gumbel`` (learnt
#: selection logits, ranked by their probabilities).
METHODS = ('probe', 'sampling', 'gumbel')

#: The custom key (``paramwise_cfg``) of the selection logits.
LOGITS_KEY = '.dct_layer.logits'

#: What each method ranks by (sampling: the validation metric).
METHOD_METRICS = {'probe': PROBE_METRIC, 'gumbel': SELECTION_METRIC}

#: The heatmap's title per method.
TITLES = {'probe': 'reading probe', 'sampling':
          'weight-shared single-frequency', 'gumbel':
          'Gumbel-softmax selection'}


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


def probe(args):
    """Score the 49 cells with :class:`CellReadingProbe` on the first
    ``--probe-images`` training images, the model as the config builds it
    (its initialisation, residual branches alive, then ``load_from`` if
    set), BN layers on batch statistics (this process)."""
    import torch
    cfg = load_config(args.config, args.cfg_options,
                      osp.join(args.out_dir, 'run'))
    cfg.experiment_name = 'fit_frequencies'
    backbone = cfg.model.get('backbone') or {}
    alive = 'zero_init_residual' in backbone or 'FcaNet' in str(
        backbone.get('type'))
    if alive and backbone.get('zero_init_residual', True):
        # zero-initialised last norms would make every FCA layer's input
        # 0 (nothing to read) until training moves them
        backbone.zero_init_residual = False
        say('residual branches initialised alive (zero_init_residual='
            'False): zero-initialised last norms leave the FCA layers '
            'nothing to read')
    runner = build_runner(cfg)
    model = runner.model
    model.init_weights()
    if cfg.get('load_from'):
        runner.load_or_resume()
    classes = runner.train_dataloader.dataset.metainfo.get('classes')
    if not classes:
        raise ValueError('The training set names no classes (metainfo '
                         '"classes"); the probe needs their number.')
    cells = CellReadingProbe(model, len(classes))
    model.train()  # batch statistics: those of the images probed
    total = min(args.probe_images, len(runner.train_dataloader.dataset))
    say(f'probing {total} training images, {len(cells.handles)} FCA '
        f'layers, {len(classes)} classes; no training')
    # the training pipeline's batches as training gets them (padded to one
    # size: MMSegmentation's test mode wants equal sizes), without the
    # batch augments that mix images and labels (MixUp, CutMix)
    preprocessor = model.data_preprocessor
    augments = getattr(preprocessor, 'batch_augments', None)
    preprocessor.batch_augments = None
    start, seen, step = time.time(), 0, max(1, total // 5)
    try:
        with torch.no_grad():
            for batch in runner.train_dataloader:
                data = preprocessor(batch, True)
                samples = data['data_samples'][:total - seen]
                cells.update([present_classes(s) for s in samples])
                model.backbone(data['inputs'][:len(samples)])
                before, seen = seen, seen + len(samples)
                if seen // step > before // step or seen == total:
                    say(f'probing: image {seen} of {total}, '
                        f'{duration(time.time() - start)} elapsed')
                if seen >= total:
                    break
    finally:
        cells.remove()
        preprocessor.batch_augments = augments
    for (u, v), score in cells.scores().items():
        write_record(args.out_dir, u, v, PROBE_METRIC, {PROBE_METRIC: score})
    say(f'{len(GRID_CELLS)} cells scored by their reading of the labels')


def fit(args):
    """Train the weight-shared network (unless ``fitted.pth`` is there),
    then evaluate every cell that has no record yet, or score the cells by
    their selection logits (gumbel) or by the probe (this process)."""
    if args.method == 'probe':
        probe(args)
        return
    work_dir = osp.join(args.out_dir, 'run')
    # the trained weights of each method under a name of their own
    fitted = osp.join(work_dir, 'fitted.pth' if args.method == 'sampling'
                      else f'fitted_{args.method}.pth')
    cfg = load_config(args.config, args.cfg_options, work_dir)
    cfg.experiment_name = 'fit_frequencies'
    # validated only after training, once per cell (here)
    validate_after_training(cfg, args.max_epochs, args.max_iters)
    gumbel = args.method == 'gumbel'
    if gumbel:  # the logits: their own learning rate, no weight decay
        paramwise = dict(cfg.optim_wrapper.get('paramwise_cfg') or {})
        keys = dict(paramwise.get('custom_keys') or {})
        # MMEngine tries the longest matching key first: a long one
        keys[LOGITS_KEY] = dict(lr_mult=args.logit_lr_mult)
        if cfg.optim_wrapper.get('optimizer', {}).get('weight_decay'):
            keys[LOGITS_KEY]['decay_mult'] = 0.0
        cfg.optim_wrapper.paramwise_cfg = dict(paramwise, custom_keys=keys)
    if osp.isfile(fitted):
        cfg.load_from, cfg.resume = fitted, False
    runner = build_runner(cfg)
    layers = use_cell_sampling(runner.model,
                               CellSelectionSqueeze if gumbel else None)
    if osp.isfile(fitted):
        say(f'trained weights found: {fitted}; not trained again')
        runner.load_or_resume()
    else:
        if gumbel:
            say(f'training once, {layers} FCA layers, each drawing one cell '
                'of the 49 per image from its selection logits')
            runner.register_hook(CellSelectionHook(*args.temperature))
        else:
            say(f'training once, {layers} FCA layers, one cell of the 49 '
                'per image')
            runner.register_hook(CellSamplingHook(args.seed, args.sampling))
        runner.register_hook(ProgressHook())
        runner.train()
        runner.save_checkpoint(work_dir, osp.basename(fitted),
                               save_optimizer=False,
                               save_param_scheduler=False)
    if gumbel:  # ranked by the logits: no evaluation per cell
        for (u, v), score in selection_scores(runner.model).items():
            write_record(args.out_dir, u, v, SELECTION_METRIC,
                         {SELECTION_METRIC: score})
        say(f'{len(GRID_CELLS)} cells scored by their selection '
            'log-probability')
        return
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
    """Run the fitting in a new process (ranking by ``metric``, sampling's;
    None for the others); its output goes to ``log``
    (appended), its ``[fit]`` lines also to the console. Returns None if
    it finished, else why not (its last line, or the signal)."""
    os.makedirs(osp.dirname(log), exist_ok=True)
    cmd = [sys.executable, osp.abspath(__file__)] + list(argv) + (
        ['--metric', metric] if metric else []) + ['--in-process']
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
    parser.add_argument('--method', default='probe', choices=METHODS,
                        help='probe (default): no training, each cell '
                        'ranked by how much its squeeze reads of the labels '
                        'in the model as built; sampling: one training, '
                        'one cell drawn uniformly per image, then each cell '
                        'evaluated; gumbel: one training, selection logits '
                        'learnt, ranked by their probabilities')
    parser.add_argument('--probe-images', type=int, default=1024,
                        help='training images the probe reads (probe; '
                        'default 1024)')
    parser.add_argument('--metric', help='validation metric to rank by '
                        '(sampling)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the cells drawn during training '
                        '(sampling)')
    parser.add_argument('--sampling', default='image',
                        choices=('image', 'batch'),
                        help='draw a cell per image (default) or per batch '
                        '(sampling)')
    parser.add_argument('--temperature', type=float, nargs=2,
                        default=(5.0, 0.5), metavar=('START', 'END'),
                        help='Gumbel-softmax temperature at the first and '
                        'the last iteration, geometric in between (gumbel; '
                        'default 5 0.5)')
    parser.add_argument('--logit-lr-mult', type=float, default=1000.0,
                        help="the selection logits' learning rate, times "
                        "the config's, without weight decay (gumbel; "
                        'default 1000: at 1 they move by about 1e-3)')
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
    if not all(0 < t < math.inf for t in args.temperature):
        parser.error(f'--temperature {args.temperature} must be positive '
                     'and finite.')
    if not 0 < args.logit_lr_mult < math.inf:
        parser.error(f'--logit-lr-mult {args.logit_lr_mult} must be '
                     'positive and finite.')
    if args.metric and args.method != 'sampling':
        parser.error(f'--metric {args.metric} ranks sampling\'s cells; '
                     f'--method {args.method} ranks by '
                     f'{METHOD_METRICS[args.method]}.')
    if args.probe_images < 4:
        parser.error(f'--probe-images {args.probe_images} is below 4: a '
                     'class must be seen present and absent twice.')
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
    metric = METHOD_METRICS.get(args.method) or args.metric or \
        DEFAULT_METRICS.get(cfg.get('default_scope'))
    if metric is None:
        raise ValueError('Pass --metric: no default for scope '
                         f'{cfg.get("default_scope")!r}.')
    log = osp.join(args.out_dir, 'run', 'output.log')
    try:
        done = read_records(args.out_dir, metric)
    except ValueError as e:  # another method's (or metric's) ranking
        raise SystemExit(f'{PREFIX}{e}')
    if len(done) < len(GRID_CELLS):
        say(f'{len(GRID_CELLS) - len(done)} of {len(GRID_CELLS)} cells to '
            f'rank by {metric}; the run\'s log: {log}')
        try:
            error = spawn(argv, metric if args.method == 'sampling' else
                          None, log)
        except KeyboardInterrupt:
            raise SystemExit(f'{PREFIX}interrupted; the log: {log}. Rerun '
                             'to go on (trained weights and evaluated cells '
                             'are kept).')
        if error is not None:
            raise SystemExit(f'{PREFIX}failed: {error}\n{PREFIX}the log: '
                             f'{log}')
        done = read_records(args.out_dir, metric)
    else:
        say(f'all {len(GRID_CELLS)} cells ranked earlier')
    ranked = write_heatmap(done, metric, args.out_dir,
                           title=TITLES[args.method])
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
