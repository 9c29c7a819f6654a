# Copyright (c) mmfca contributors. All rights reserved.
"""Frequencies fitted in one training (fit_frequencies.py) against the
paper's 49-run single-frequency ablation (frequency_ablation.py), on a
two-class set whose class only known DCT cells read, each with a known
strength (:func:`mmfca.datasets.make_planted_frequency_set`, 224 px, so
every stage's map is its DCT filter's size), FcaNet-18 at a quarter of its
width (``base_channels=16``: the published geometry, a run in about half a
minute on one core).

    python benchmarks/bench_frequency_fitting.py \\
        --out-dir work_dirs/fit_bench \\
        [--part all|probe|fit|gumbel|ablation|retrain|dense|results]
        [--epochs 4] [--depth 0.2] [--fit-seeds 3] [--ablation-seeds 2]
        [--retrain-seeds 5] [--extra-ablation-seeds 0]

Parts, cheapest decisive results first (``all`` runs them in this order):

* ``probe``: the fitting tool's default mode (``--method probe``, no
  training), one run per seed, and the same on the training labels
  shuffled (a control): each ranking against the planted truth
  (precision@k, k the number of planted cells; precision@16 against the 16
  strongest; Spearman against the strengths, 0 for the cells not
  planted), Jaccard of the chosen 16 across seeds;
* ``fit``: the same for the sampling mode (``--method sampling``: one
  training, then each cell evaluated);
* ``gumbel``: the same for the Gumbel-softmax mode (``--method gumbel``,
  selection logits; one training, no evaluation per cell);
* ``ablation``: the ablation tool over all 49 cells, once per seed; the
  Spearman correlation of two seeds' rankings is the noise ceiling; then
  every ranking (and a data-free prior: low frequencies first, (0, 0)
  last) against the mean ablation ranking (Spearman,
  precision@16 against the ablation's top 16); ``--extra-ablation-seeds``
  adds seeds for the ceiling of a mean over seeds (half against half);
* ``retrain``: FcaNet-18 with fixed DCT filters and 16 frequencies, per
  list (fitted by either mode, ablation's, published top16, low16, 16
  random cells) and GAP alone (top1, i.e. SE), one training per seed:
  top-1, mean and spread.

Restartable: finished runs (the tools' records, the retrains' results) are
skipped. ``OUT/results.md`` is rewritten after every run, so partial
results can be read at any time; each run's whole output is in its folder.
Every training uses the same schedule (``--epochs``), so the runs cost the
same; times are wall-clock seconds of this machine.
"""
import argparse
import itertools
import json
import os
import os.path as osp
import random
import subprocess
import sys
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools', 'analysis_tools')
BASE_CONFIG = osp.join(REPO, 'configs', 'fcanet', 'fcanet18_8xb32_in1k.py')
#: Where each mode of the fitting tool writes its runs, under OUT;
#: ``shuffled`` is the probe on the training labels shuffled (a control: a
#: ranking that owes nothing to the labels).
FIT_DIRS = {'probe': 'fit_probe', 'shuffled': 'fit_probe_shuffled',
            'sampling': 'fit', 'gumbel': 'fit_gumbel'}

#: The benchmark part that runs each mode.
FIT_PARTS = {'probe': 'probe', 'shuffled': 'probe', 'sampling': 'fit',
             'gumbel': 'gumbel'}


def low_frequency_prior():
    """A ranking that reads no data: low frequencies first (by u + v),
    (0, 0) last, as ``{cell: value}``."""
    prior = {(u, v): -float(u + v) for u in range(7) for v in range(7)}
    prior[(0, 0)] = -99.0
    return prior


def planted_config(data_root, num_classes, epochs, path, width=16):
    """FcaNet-18 (``base_channels=width``) on the planted set: images as
    they are (no crop or flip: they would move the planted layout), batch
    32, SGD 0.1 with a warm-up epoch and cosine decay, one validation at
    the end; written to ``path``."""
    from mmengine.config import Config, ConfigDict
    cfg = Config.fromfile(BASE_CONFIG)
    cfg.model.backbone.base_channels = width
    cfg.model.head.in_channels = width * 8
    cfg.model.head.num_classes = num_classes
    cfg.model.head.topk = (1, )
    # the residual branches (where the FCA layers are) alive from the
    # start: zero-initialised last norms silence the attention (its input
    # and its gradients) for most of a run this short
    cfg.model.backbone.zero_init_residual = False
    cfg.data_preprocessor.num_classes = num_classes
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    for loader, prefix, shuffle in (('train_dataloader', 'train', True),
                                    ('val_dataloader', 'val', False)):
        cfg[loader] = ConfigDict(
            batch_size=32, num_workers=0, persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=shuffle),
            dataset=dict(type='CustomDataset', data_root=data_root,
                         data_prefix=prefix, pipeline=pipeline))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy',
                                                  topk=(1, ))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
             end=1, convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=epochs,
             T_max=epochs - 1, convert_to_iter_based=True)]
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs,
                         val_interval=epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 10
    cfg.randomness = dict(seed=0)
    cfg.dump(path)
    return path


def seeded(seed):
    """``--cfg-options`` of a seed."""
    return ['--cfg-options', f'randomness.seed={seed}']


def call(cmd, log):
    """Run ``cmd`` nicely (one thread), its output appended to ``log``;
    SystemExit naming the log if it fails."""
    os.makedirs(osp.dirname(log), exist_ok=True)
    path = [REPO] + os.environ.get('PYTHONPATH', '').split(os.pathsep)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(p for p in path if p))
    with open(log, 'a') as f:
        code = subprocess.call(['nice', '-n', '19', sys.executable] + cmd,
                               stdout=f, stderr=subprocess.STDOUT, env=env,
                               cwd=REPO)
    if code:
        raise SystemExit(f'[bench] failed ({code}): {" ".join(cmd)}; log: '
                         f'{log}')


def read_records(folder):
    """``{(u, v): value}`` of the cells a tool has finished so far."""
    from mmfca.frequency_selection import read_records
    return read_records(folder)


def load_ranking(folder):
    """``{(u, v): value}`` of a finished tool's cells, or None."""
    if not osp.isfile(osp.join(folder, 'ranking.json')):
        return None
    with open(osp.join(folder, 'ranking.json')) as f:
        r = json.load(f)
    if len(r['pairs']) != 49:
        return None
    return {tuple(p): v for p, v in zip(r['pairs'], r['values'])}


def ranked(values):
    """Cells best first (ties: row-major order, as the tools sort)."""
    return [c for c, _ in sorted(values.items(), key=lambda kv: -kv[1])]


def spearman(a, b):
    """Spearman's rho of two ``{cell: value}`` over their common cells."""
    from scipy.stats import spearmanr
    cells = sorted(set(a) & set(b))
    return float(spearmanr([a[c] for c in cells],
                           [b[c] for c in cells])[0])


def within_band(a, b):
    """Spearman's rho of two ``{cell: value}`` within frequency bands: each
    cell's rank less the mean rank of its band (cells of equal u + v),
    (0, 0) left out; what two rankings share beyond preferring low
    frequencies (the data-free prior scores 0 by construction)."""
    from scipy.stats import rankdata, spearmanr
    cells = [c for c in sorted(set(a) & set(b)) if c != (0, 0)]
    band = np.array([u + v for u, v in cells])

    def residual(values):
        x = rankdata([values[c] for c in cells])
        for k in set(band):
            x[band == k] -= x[band == k].mean()
        return x

    x, y = residual(a), residual(b)
    if not (x.any() and y.any()):  # constant within bands: nothing shared
        return 0.0
    return float(spearmanr(x, y)[0])


def mean_ranking(runs):
    """``{cell: mean value}`` of several rankings' ``{cell: value}``."""
    return {c: float(np.mean([r[c] for r in runs])) for c in runs[0]}


def jaccard(a, b):
    return len(set(a) & set(b)) / len(set(a) | set(b))


def mean_std(xs):
    xs = np.asarray(xs, dtype=float)
    sd = xs.std(ddof=1) if len(xs) > 1 else float('nan')
    return f'{xs.mean():.2f} ± {sd:.2f} (n={len(xs)})'


class Bench:

    def __init__(self, args):
        self.args = args
        self.out = osp.abspath(args.out_dir)
        from mmfca.datasets import planted_cells
        design = planted_cells()
        #: the planted truth: cells strongest first, their strengths
        self.cells = [c for c, _, _ in design]
        self.strength = {(u, v): 0.0 for u in range(7) for v in range(7)}
        self.strength.update({c: w for c, w, _ in design})
        self.config = osp.join(self.out, 'planted.py')
        self.times = {}

    def setup(self):
        from mmfca.datasets import (PLANTED_CLASSES,
                                    make_planted_frequency_set)
        data = osp.join(self.out, 'data')
        if not osp.isfile(osp.join(data, 'planted.json')):
            make_planted_frequency_set(data, self.args.num_train,
                                       self.args.num_val, seed=0,
                                       img_size=self.args.img_size,
                                       depth=self.args.depth)
        planted_config(data, len(PLANTED_CLASSES), self.args.epochs,
                       self.config)

    def fit_dir(self, seed, method='sampling'):
        return osp.join(self.out, FIT_DIRS[method], f'seed{seed}')

    def fits(self, method):
        """``{seed: ranking}`` of the finished fits of ``method``."""
        fits = {s: load_ranking(self.fit_dir(s, method))
                for s in range(self.args.fit_seeds)}
        return {s: r for s, r in fits.items() if r}

    def ablation_dir(self, seed):
        return osp.join(self.out, 'ablation', f'seed{seed}')

    def run_fit(self, seed, method='sampling'):
        out = self.fit_dir(seed, method)
        if load_ranking(out) is None:
            print(f'[bench] fit ({method}) seed {seed}', flush=True)
            start = time.time()
            whole = not osp.exists(out)  # else a resumed run: not timed
            options = seeded(seed)
            if method == 'shuffled':
                options += ['train_dataloader.dataset.ann_file='
                            + self.shuffled_labels(),
                            'train_dataloader.dataset.classes=[neg,pos]']
            call([osp.join(TOOLS, 'fit_frequencies.py'), self.config,
                  '--out-dir', out, '--method', 'probe' if method ==
                  'shuffled' else method, '--seed', str(seed)] + options,
                 osp.join(out, 'console.log'))
            if whole:
                with open(osp.join(out, 'time.json'), 'w') as f:
                    json.dump(dict(seconds=time.time() - start), f)
        self.write_results()

    def shuffled_labels(self):
        """An annotation file of the training images with their labels
        shuffled (the same number of each class), for the control."""
        from mmfca.datasets import PLANTED_CLASSES
        path = osp.join(self.out, 'train_shuffled.txt')
        if not osp.isfile(path):
            root = osp.join(self.out, 'data', 'train')
            # the folders' classes, in the order the folder set reads them
            files = [(f'{c}/{name}', k) for k, c in enumerate(
                sorted(PLANTED_CLASSES)) for name in sorted(os.listdir(
                    osp.join(root, c)))]
            labels = [k for _, k in files]
            random.Random(0).shuffle(labels)
            with open(path, 'w') as f:
                f.writelines(f'{name} {k}\n'
                             for (name, _), k in zip(files, labels))
        return path

    def ablation_order(self):
        """The 49 cells in a fixed random order: a partial ablation is a
        random sample of planted and other cells."""
        cells = [(u, v) for u in range(7) for v in range(7)]
        random.Random(0).shuffle(cells)
        return cells

    def run_ablation(self, seed):
        out = self.ablation_dir(seed)
        print(f'[bench] ablation seed {seed}', flush=True)
        cells = ' '.join(f'{u},{v}' for u, v in self.ablation_order())
        call([osp.join(TOOLS, 'frequency_ablation.py'), self.config,
              '--out-dir', out, '--cells', cells] + seeded(seed),
             osp.join(out, 'console.log'))
        self.write_results()

    def lists(self):
        """The retrained frequency lists, by name (None until known)."""
        from mmfca.models.layers.dct import get_grid_freqs
        fit = load_ranking(self.fit_dir(0))
        gumbel = load_ranking(self.fit_dir(0, 'gumbel'))
        probe = load_ranking(self.fit_dir(0, 'probe'))
        abl = self.mean_ablation() if all(
            load_ranking(self.ablation_dir(s))
            for s in range(self.args.ablation_seeds)) else None
        rng = random.Random(0)
        cells = [(u, v) for u in range(7) for v in range(7)]
        return {
            'probe16 (probe seed 0)': ranked(probe)[:16] if probe else None,
            'fitted16 (fit seed 0)': ranked(fit)[:16] if fit else None,
            'gumbel16 (gumbel fit seed 0)':
            ranked(gumbel)[:16] if gumbel else None,
            'ablation16 (mean of seeds)': ranked(abl)[:16] if abl else None,
            'top16 (published)': get_grid_freqs('top16'),
            'low16': get_grid_freqs('low16'),
            'random16': rng.sample(cells, 16),
            'prior16 (low frequencies, no (0, 0))':
            ranked(low_frequency_prior())[:16],
            'GAP alone (top1 = SE)': [(0, 0)],
        }

    def retrain_dir(self, name, seed):
        slug = name.split(' ')[0]
        return osp.join(self.out, 'retrain', slug, f'seed{seed}')

    def run_retrain(self):
        for seed in range(self.args.retrain_seeds):
            for name, pairs in self.lists().items():
                if pairs is None:
                    print(f'[bench] retrain {name}: list not known yet; '
                          'skipped', flush=True)
                    continue
                out = self.retrain_dir(name, seed)
                if osp.isfile(osp.join(out, 'result.json')):
                    continue
                print(f'[bench] retrain {name} seed {seed}', flush=True)
                start = time.time()
                call([osp.abspath(__file__), '--one-run', out, '--seed',
                      str(seed), '--pairs', json.dumps(pairs),
                      '--out-dir', self.out], osp.join(out, 'output.log'))
                with open(osp.join(out, 'result.json')) as f:
                    result = json.load(f)
                result.update(seconds=time.time() - start, pairs=pairs)
                with open(osp.join(out, 'result.json'), 'w') as f:
                    json.dump(result, f)
                self.write_results()

    def mean_ablation(self):
        runs = [load_ranking(self.ablation_dir(s))
                for s in range(self.args.ablation_seeds)]
        runs = [r for r in runs if r]
        return mean_ranking(runs) if runs else None

    def truth(self, values, label):
        """A ranking against the planted truth: a table row."""
        k, top = len(self.cells), ranked(values)
        hit_k = len(set(top[:k]) & set(self.cells))
        hit16 = len(set(top[:16]) & set(self.cells[:16]))
        return (f'| {label} | {hit_k}/{k} | {hit16}/16 | '
                f'{spearman(values, self.strength):.2f} | {top[:4]} |')

    def more_seeds(self, fits):
        """With ``--extra-ablation-seeds``: the ceiling of a mean over
        seeds (the means of two halves of the seeds against each other) and
        the fitted rankings against the mean of all seeds; the retrained
        lists stay those of the first ``--ablation-seeds``."""
        a = self.args
        total = a.ablation_seeds + a.extra_ablation_seeds
        runs = [load_ranking(self.ablation_dir(s)) for s in range(total)]
        if not a.extra_ablation_seeds or not all(runs):
            return []
        half = total // 2
        pairs = list(itertools.combinations(range(total), 2))
        rho = [spearman(runs[i], runs[j]) for i, j in pairs]
        split = spearman(mean_ranking(runs[:half]),
                         mean_ranking(runs[half:2 * half]))
        split_band = within_band(mean_ranking(runs[:half]),
                                 mean_ranking(runs[half:2 * half]))
        # what one training's ranking can reach against the mean of others
        one = [spearman(runs[i], mean_ranking(runs[:i] + runs[i + 1:]))
               for i in range(total)]
        lines = ['', f'With {total} ablation seeds: Spearman of two seeds '
                 f'{np.mean(rho):.2f} on average over the {len(pairs)} '
                 f'pairs (range {min(rho):.2f}-{max(rho):.2f}); of the mean '
                 f'of seeds 0-{half - 1} against the mean of seeds '
                 f'{half}-{2 * half - 1} (the ceiling of a {half}-seed '
                 f'mean): {split:.2f} ({split_band:.2f} within frequency '
                 'bands); of one seed against the mean of the '
                 f'other {total - 1}: {np.mean(one):.2f} on average (range '
                 f'{min(one):.2f}-{max(one):.2f}), what a ranking from one '
                 'training can be expected to reach.']
        if fits:
            everything = mean_ranking(runs)
            lines += ['', f'| ranking | Spearman vs the mean of '
                      f'{total} seeds | within bands | precision@16 vs its '
                      'top 16 |', '|---|---|---|---|']
            for s, r in fits.items():
                p16 = len(set(ranked(r)[:16]) & set(ranked(everything)[:16]))
                lines.append(f'| {s} | {spearman(r, everything):.2f} | '
                             f'{within_band(r, everything):.2f} | {p16} |')
        return lines

    def write_results(self):
        a, k = self.args, len(self.cells)
        self.times = {}
        lines = [
            '# Fitted frequencies against the 49-run ablation', '',
            f'Planted set: {a.num_train} train / {a.num_val} val images of '
            f'{a.img_size} px, 2 classes (the sign of the planted layout), '
            f'depth drawn in [0, {a.depth}] per image; {k} planted cells, '
            f'strengths 1 down to 0.1 (strongest first: {self.cells[:4]}); '
            f'FcaNet-18 with base_channels 16, {a.epochs} epochs per '
            f'training. Command: `python benchmarks/bench_frequency_fitting'
            f'.py --out-dir {a.out_dir}`. Partial until every row says so.',
            '']
        fits = self.fits('sampling')
        by_method = {m: self.fits(m) for m in FIT_DIRS}
        # every mode's rankings, by a label of mode and seed, and the
        # data-free prior
        every_fit = {f'{m}, seed {s}': r for m, runs in by_method.items()
                     for s, r in runs.items()}
        every_fit['low-frequency prior (no data)'] = low_frequency_prior()
        abl = {s: load_ranking(self.ablation_dir(s))
               for s in range(a.ablation_seeds)}
        rng = np.random.default_rng(0)
        rand = [{c: rng.random() for c in self.strength} for _ in range(200)]
        lines += ['## Against the planted truth', '',
                  f'precision@{k}: planted cells among the first {k} '
                  f'(random: {k * k / 49:.1f}); precision@16: the 16 '
                  'strongest among the first 16 (random: '
                  f'{16 * 16 / 49:.1f}); Spearman against the strengths '
                  '(0 for the 16 cells not planted).', '',
                  f'| ranking | precision@{k} | precision@16 | Spearman | '
                  'first 4 |', '|---|---|---|---|---|']
        for label, r in every_fit.items():
            lines.append(self.truth(r, label))
        for s, r in abl.items():
            if r:
                lines.append(self.truth(r, f'ablation, seed {s}'))
        rho = [spearman(r, self.strength) for r in rand]
        lines.append(f'| random (200 draws) | {k * k / 49:.1f} | '
                     f'{16 * 16 / 49:.1f} | {np.mean(rho):.2f} ± '
                     f'{np.std(rho):.2f} | |')
        lines.append('')
        for method, runs in by_method.items():
            timed = [osp.join(self.fit_dir(s, method), 'time.json')
                     for s in runs]
            self.times[method] = [json.load(open(t))['seconds']
                                  for t in timed if osp.isfile(t)]
            if len(runs) < 2:
                continue
            pairs = list(itertools.combinations(runs.values(), 2))
            jac = np.mean([jaccard(ranked(x)[:16], ranked(y)[:16])
                           for x, y in pairs])
            rho = np.mean([spearman(x, y) for x, y in pairs])
            lines += [f'- {method}, across fit seeds ({len(runs)}): mean '
                      f'Jaccard of the chosen 16 {jac:.2f} (random lists: '
                      f'about {16 / (98 - 16):.2f}), mean Spearman of the '
                      f'rankings {rho:.2f}.']
        lines += ['', '## The ablation (one training per cell)', '']
        for s in range(a.ablation_seeds):
            folder = osp.join(self.ablation_dir(s), 'cells')
            n = len(os.listdir(folder)) if osp.isdir(folder) else 0
            extra = ''
            part = read_records(self.ablation_dir(s))
            planted = [x for c, x in part.items() if c in self.cells]
            others = [x for c, x in part.items() if c not in self.cells]
            if planted and others:
                extra = (f'; top-1 of the planted cells {np.mean(planted):.2f}'
                         f' on average ({len(planted)}, range '
                         f'{min(planted):.2f}-{max(planted):.2f}), of the '
                         f'others {np.mean(others):.2f} ({len(others)}, '
                         f'range {min(others):.2f}-{max(others):.2f})')
            lines.append(f'- seed {s}: {n} of 49 cells{extra}')
        done = [r for r in abl.values() if r]
        mean = self.mean_ablation() if len(done) == a.ablation_seeds \
            else None
        if len(done) >= 2:
            ceiling = spearman(done[0], done[1])
            lines += ['', f'Noise ceiling (Spearman, ablation seed 0 vs '
                      f'seed 1): {ceiling:.2f}']
        else:  # partial: the cells both seeds have so far
            parts = [read_records(self.ablation_dir(s))
                     for s in range(a.ablation_seeds)]
            common = set(parts[0]).intersection(*parts[1:]) \
                if len(parts) > 1 else set()
            if len(common) >= 3:
                lines += ['', 'Noise ceiling so far (partial): Spearman of '
                          f'seed 0 vs seed 1 over the {len(common)} cells '
                          f'both have: {spearman(parts[0], parts[1]):.2f}']
            if fits and len(parts[0]) >= 3:
                rhos = [spearman(r, parts[0]) for r in fits.values()]
                lines += ['', 'Fitted rankings vs ablation seed 0 so far '
                          f'(partial, its {len(parts[0])} cells): Spearman '
                          + ', '.join(f'{x:.2f}' for x in rhos)
                          + ' (fit seeds ' + ', '.join(map(str, fits))
                          + ')']
        if mean and every_fit:
            between = (f'; between ablation seeds 0 and 1: '
                       f'{within_band(*done[:2]):.2f}' if len(done) > 1
                       else '')
            lines += ['', 'Within frequency bands: Spearman of the ranks '
                      'less their band\'s mean rank (cells of equal u + v, '
                      '(0, 0) left out), what a ranking shares with the '
                      f'ablation beyond preferring low frequencies{between}.',
                      '',
                      '| ranking | Spearman vs mean ablation | within bands '
                      '| precision@16 vs ablation top 16 (chance 5.2) |',
                      '|---|---|---|---|']
            for s, r in every_fit.items():
                p16 = len(set(ranked(r)[:16]) & set(ranked(mean)[:16]))
                lines.append(f'| {s} | {spearman(r, mean):.2f} | '
                             f'{within_band(r, mean):.2f} | {p16} |')
            # a random ranking, for scale
            rng = np.random.default_rng(0)
            rand = [{c: rng.random() for c in mean} for _ in range(200)]
            rho = [spearman(r, mean) for r in rand]
            band = [within_band(r, mean) for r in rand]
            lines.append(f'| random ranking (200 draws) | '
                         f'{np.mean(rho):.2f} ± {np.std(rho):.2f} | '
                         f'{np.mean(band):.2f} ± {np.std(band):.2f} | '
                         f'{16 * 16 / 49:.1f} |')
        lines += self.more_seeds(every_fit)
        lines += ['', '## Retrained with fixed DCT filters (top-1 %)', '',
                  '| list | top-1 | pairs |', '|---|---|---|']
        for name, pairs in self.lists().items():
            acc = []
            for seed in range(a.retrain_seeds):
                path = osp.join(self.retrain_dir(name, seed), 'result.json')
                if osp.isfile(path):
                    with open(path) as f:
                        res = json.load(f)
                    acc.append(res['accuracy/top1'])
                    self.times.setdefault('train', []).append(res['seconds'])
            shown = mean_std(acc) if acc else 'not run yet'
            lines.append(f'| {name} | {shown} | {pairs} |')
        cells = []
        for s in range(a.ablation_seeds):
            for name in (os.listdir(osp.join(self.ablation_dir(s), 'runs'))
                         if osp.isdir(osp.join(self.ablation_dir(s), 'runs'))
                         else []):
                cells.append(osp.join(self.ablation_dir(s), 'runs', name))
        lines += ['', '## Cost (wall-clock seconds, this machine)', '']
        if self.times.get('probe'):
            lines.append(f'- one fitting run, probe (no training): '
                         f'{np.mean(self.times["probe"]):.0f} s')
        if self.times.get('sampling'):
            lines.append(f'- one fitting run, sampling (training + 49 '
                         f'evaluations): {np.mean(self.times["sampling"]):.0f}'
                         ' s')
        if self.times.get('gumbel'):
            lines.append(f'- one fitting run, gumbel (training, no '
                         f'evaluation): {np.mean(self.times["gumbel"]):.0f} s')
        if self.times.get('train'):
            one = np.mean(self.times['train'])
            lines.append(f'- one ordinary training run: {one:.0f} s; the '
                         f'53 runs of the paper\'s protocol: about '
                         f'{53 * one:.0f} s')
        with open(osp.join(self.out, 'results.md'), 'w') as f:
            f.write('\n'.join(lines) + '\n')


def seg_config(data_root, path):
    """MMSegmentation's FCN with FcaNet-50 on the synthetic segmentation
    set: 64 px, batch 2, no checkpoint; written to ``path``."""
    from mmengine.config import Config, ConfigDict

    from mmfca.datasets import SEG_CLASSES
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/seg/fcn_fca50-d8_4xb4-80k_ade20k-512x512.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.decode_head.num_classes = len(SEG_CLASSES)
    cfg.model.auxiliary_head.num_classes = len(SEG_CLASSES)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='Resize', scale=(64, 64), keep_ratio=True),
                dict(type='PackSegInputs')]
    for loader, split in (('train_dataloader', 'train'),
                          ('val_dataloader', 'val')):
        cfg[loader].dataset = ConfigDict(
            type='BaseSegDataset', data_root=data_root,
            metainfo=dict(classes=SEG_CLASSES),
            data_prefix=dict(img_path=f'img_dir/{split}',
                             seg_map_path=f'ann_dir/{split}'),
            img_suffix='.jpg', seg_map_suffix='.png', pipeline=pipeline)
        cfg[loader].batch_size = 2
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=4,
                         val_interval=4)
    cfg.default_hooks.logger.interval = 1
    cfg.dump(path)
    return path


def run_dense(out):
    """The fitting tool (probe and sampling modes) on the demo's detector
    (synthetic COCO, one epoch) and on FCN FcaNet-50 (synthetic
    segmentation, 4 iterations); each retrained with its fitted 16 and
    evaluated."""
    from mmfca.datasets import make_synthetic_coco, make_synthetic_segmentation
    out = osp.join(out, 'dense')
    coco = osp.join(out, 'coco') + '/'
    if not osp.isdir(osp.join(coco, 'annotations')):
        make_synthetic_coco(coco, num_train=8, num_val=4, seed=0,
                            img_size=(96, 96))
    seg = osp.join(out, 'seg')
    if not osp.isdir(osp.join(seg, 'ann_dir')):
        # 12 images: each class present in some and absent from others
        make_synthetic_segmentation(seg, num_train=12, num_val=2)
    ann = coco + 'annotations/instances_val2017.json'
    det_options = {
        'train_dataloader.dataset.data_root': coco,
        'val_dataloader.dataset.data_root': coco,
        'test_dataloader.dataset.data_root': coco,
        'val_evaluator.ann_file': ann, 'test_evaluator.ann_file': ann,
        'train_dataloader.batch_size': 4, 'train_cfg.max_epochs': 1}
    tasks = [('detection', osp.join(
        REPO, 'configs/demo/mask-rcnn_fca18_fpn_synthetic-coco_cpu.py'),
        det_options, 'coco/bbox_mAP'),
        ('segmentation', seg_config(seg, osp.join(out, 'seg.py')), {},
         'mIoU')]
    lines = []
    for (name, config, options, metric), method in itertools.product(
            tasks, ('probe', 'sampling')):
        fit = osp.join(out, name, FIT_DIRS[method])
        cmd = [osp.join(TOOLS, 'fit_frequencies.py'), config, '--out-dir',
               fit, '--method', method]
        if options:
            cmd += ['--cfg-options'] + [f'{k}={v}' for k, v in
                                        options.items()]
        if load_ranking(fit) is None:
            call(cmd, osp.join(fit, 'console.log'))
        pairs = ranked(load_ranking(fit))[:16]
        run = osp.join(out, name, 'retrain' if method == 'sampling' else
                       f'retrain_{method}')
        if not osp.isfile(osp.join(run, 'result.json')):
            call([osp.abspath(__file__), '--one-run', run, '--seed', '0',
                  '--pairs', json.dumps(pairs), '--config', config,
                  '--options', json.dumps(options), '--out-dir', out],
                 osp.join(run, 'output.log'))
        with open(osp.join(run, 'result.json')) as f:
            value = json.load(f)[metric]
        lines.append(f'| {name} | `{" ".join(cmd[1:])}` | {pairs} | '
                     f'{metric} {value:.4g} |')
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write('| task | fitting command | fitted 16 | retrained with '
                'them |\n|---|---|---|---|\n' + '\n'.join(lines) + '\n')
    print('\n'.join(lines), flush=True)


def one_run(args):
    """Train ``--config`` (default: the planted one) with ``--pairs`` and
    fixed DCT filters, validate once; write ``result.json`` (this
    process)."""
    from mmfca.frequency_selection import validate_after_training
    from mmfca.utils import build_runner, load_config
    pairs = [tuple(p) for p in json.loads(args.pairs)]
    config = args.config or osp.join(osp.abspath(args.out_dir), 'planted.py')
    options = json.loads(args.options) if args.options else None
    cfg = load_config(config, options, args.one_run)
    cfg.model.backbone.freq_sel_method = pairs
    cfg.randomness = dict(seed=args.seed)
    validate_after_training(cfg)
    runner = build_runner(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    with open(osp.join(args.one_run, 'result.json'), 'w') as f:
        json.dump({k: float(v) for k, v in metrics.items()}, f)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default='work_dirs/fit_bench')
    parser.add_argument('--part', default='all',
                        choices=('all', 'probe', 'fit', 'gumbel',
                                 'ablation', 'retrain', 'dense', 'results'))
    parser.add_argument('--epochs', type=int, default=4)
    parser.add_argument('--num-train', type=int, default=512)
    parser.add_argument('--num-val', type=int, default=256)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--depth', type=float, default=0.2,
                        help='largest contrast modulation of the planted '
                        'set (each image draws its own in [0, depth])')
    parser.add_argument('--fit-seeds', type=int, default=3)
    parser.add_argument('--ablation-seeds', type=int, default=2)
    parser.add_argument('--retrain-seeds', type=int, default=5)
    parser.add_argument('--extra-ablation-seeds', type=int, default=0,
                        help='more ablation seeds for the ceiling of a mean '
                        'over seeds (the retrained lists stay those of '
                        'the first --ablation-seeds)')
    parser.add_argument('--one-run', help=argparse.SUPPRESS)
    parser.add_argument('--seed', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--pairs', help=argparse.SUPPRESS)
    parser.add_argument('--config', help=argparse.SUPPRESS)
    parser.add_argument('--options', help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    if args.one_run:
        one_run(args)
        return
    bench = Bench(args)
    os.makedirs(bench.out, exist_ok=True)
    bench.setup()
    for method in FIT_DIRS:
        if args.part in ('all', FIT_PARTS[method]):
            for seed in range(args.fit_seeds):
                bench.run_fit(seed, method)
    if args.part in ('all', 'ablation'):
        for seed in range(args.ablation_seeds + args.extra_ablation_seeds):
            bench.run_ablation(seed)
    if args.part in ('all', 'retrain'):
        bench.run_retrain()
    if args.part == 'dense':
        run_dense(bench.out)
    bench.write_results()
    print(f'[bench] {osp.join(bench.out, "results.md")}', flush=True)


if __name__ == '__main__':
    main()
