"""The model index (OpenMMLab's model-index.yml and per-folder metafiles,
read with the ``modelindex`` package that MMPretrain uses): every model
config is listed once, every metafile is imported, every entry is complete,
its metadata agree with its config, and its config builds its model."""
import glob
import os.path as osp
import re

import pytest
import yaml
from mmengine.config import Config
from modelindex.load_model_index import load

from _helpers import REPO
from _helpers.configs import build_model, load_dict

INDEX = osp.join(REPO, 'model-index.yml')
#: config folders that hold no models: pieces inherited by the configs,
#: and MMDeploy's deploy configs (configs/deploy/README.md)
NOT_MODELS = ('configs/_base_/', 'configs/deploy/')
#: the README's short names: alias -> the config the index lists
ALIASES = {
    'configs/mask_rcnn_fca50_coco.py':
    'configs/det/mask-rcnn_fca50_fpn_1x_coco.py',
}


def rel(path):
    return osp.relpath(path, REPO)


def model_configs():
    """Every model config under configs/, relative to the repository."""
    paths = glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                      recursive=True)
    return {rel(p) for p in paths if not rel(p).startswith(NOT_MODELS)}


INDEXED = load(INDEX)
ENTRIES = {m.name: m.full_model for m in INDEXED.models}


def test_every_model_config_is_in_a_metafile():
    listed = [m.config for m in ENTRIES.values()]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    missing = model_configs() - set(listed) - set(ALIASES)
    assert not missing, f'model configs in no metafile: {sorted(missing)}'
    absent = {c for c in listed if not osp.isfile(osp.join(REPO, c))}
    assert not absent, f'metafile Config paths that do not exist: {absent}'
    assert not set(listed) & set(ALIASES), 'an alias is listed'


def test_every_metafile_is_in_the_index():
    with open(INDEX) as f:
        imports = yaml.safe_load(f)['Import']
    metafiles = {
        rel(p) for p in glob.glob(osp.join(REPO, 'configs', '**',
                                           'metafile.yml'), recursive=True)}
    assert len(imports) == len(set(imports)), 'a metafile imported twice'
    assert metafiles - set(imports) == set(), 'not in model-index.yml'
    assert set(imports) - metafiles == set(), 'imported but not there'
    # no model-config folder without its metafile and README
    folders = {osp.dirname(c) for c in model_configs() - set(ALIASES)}
    for folder in folders:
        for name in ('metafile.yml', 'README.md'):
            assert osp.isfile(osp.join(REPO, folder, name)), \
                f'{folder}/ has no {name}'
    assert len(ENTRIES) == len(INDEXED.models), 'two entries share a Name'


def test_entries_are_complete():
    """What modelindex checks (collections exist, results have Task,
    Dataset, Metrics) plus the fields OpenMMLab's model zoo reads. Paths
    (Config, README, Code) are relative to the repository root, as
    OpenMMLab writes them; modelindex resolves README paths against the
    metafile's folder, so that one check of its is replaced by ours."""
    errors = [e for e in INDEXED.check(silent=True)
              if 'Path to README file' not in e]
    assert errors == []
    for name, model in ENTRIES.items():
        assert name == osp.splitext(osp.basename(model.config))[0]
        assert model.in_collection, name
        assert osp.isfile(osp.join(REPO, model.readme)), model.readme
        assert model.paper == {
            'URL': 'https://arxiv.org/abs/2012.11879',
            'Title': 'FcaNet: Frequency Channel Attention Networks'}, name
        code = model.code['URL']
        assert code.startswith('https://') or osp.isfile(
            osp.join(REPO, code)), f'{name}: Code {code}'
        # no download URL: the release's weights are on Google Drive /
        # Baidu only, behind its README's links
        assert model.weights is None, name
        assert model.metadata.architecture, name
        for result in model.results or []:
            assert result.metrics and all(
                isinstance(v, float) for v in result.metrics.values()), name


def test_published_numbers_are_the_papers():
    """The numbers the index gives, each from its source: the FcaNet paper
    and release (COCO val2017, ImageNet-1k val top-1), and this repository's
    demo measurement (mean of seeds 0-2, benchmarks/RESULTS.md)."""
    published = {
        name: {(r.dataset, k): v for r in model.results for k, v in
               r.metrics.items()}
        for name, model in ENTRIES.items() if model.results}
    assert published == {
        'faster-rcnn_fca50_fpn_1x_coco': {('COCO', 'box AP'): 39.0},
        'faster-rcnn_fca101_fpn_1x_coco': {('COCO', 'box AP'): 41.2},
        'mask-rcnn_fca50_fpn_1x_coco': {('COCO', 'box AP'): 40.3,
                                        ('COCO', 'mask AP'): 36.2},
        'fcanet34_8xb32_in1k': {('ImageNet-1k', 'Top 1 Accuracy'): 75.07},
        'fcanet50_8xb32_in1k': {('ImageNet-1k', 'Top 1 Accuracy'): 78.52},
        'fcanet101_8xb32_in1k': {('ImageNet-1k', 'Top 1 Accuracy'): 79.64},
        'fcanet152_8xb32_in1k': {('ImageNet-1k', 'Top 1 Accuracy'): 80.08},
        'mask-rcnn_fca18_fpn_synthetic-coco_cpu': {
            ('synthetic COCO-style shapes (mmfca)', 'box AP'): round(
                100 * (0.573 + 0.542 + 0.578) / 3, 1),
            ('synthetic COCO-style shapes (mmfca)', 'mask AP'): round(
                100 * (0.589 + 0.599 + 0.613) / 3, 1)},
    }


def test_the_readme_short_name_is_the_indexed_config():
    """configs/mask_rcnn_fca50_coco.py (the README's commands) resolves to
    exactly the config the index lists."""
    for alias, target in ALIASES.items():
        assert load_dict(osp.join(REPO, alias)) == load_dict(
            osp.join(REPO, target))


def expected_backbone(config):
    """The backbone type a shipped config builds."""
    name = osp.basename(config)
    if 'squeeze_switch' in config:  # other libraries' backbones, switched
        return {'fca-seresnet50_8xb32_in1k.py': 'MultiSpectralSEResNet',
                'faster-rcnn_x101-32x4d-fca_fpn_1x_coco.py': 'ResNeXt'}.get(
                    name, 'ResNet')
    # the apples-to-apples baselines of configs/fcanet/ keep their backbone
    return {'resnet50': 'ResNet', 'seresnet50': 'SEResNet'}.get(
        name.split('_')[0], 'FcaNet')


def batch_size(name, cfg):
    """The total batch a config is written for: its auto_scale_lr base, or
    GPUs x images per GPU from an MMSegmentation-style name (4xb2)."""
    if 'auto_scale_lr' in cfg:
        return cfg.auto_scale_lr.base_batch_size
    gpus, per_gpu = name.split('_')[-2].split('-')[0].split('xb')
    assert int(per_gpu) == cfg.train_dataloader.batch_size
    return int(gpus) * int(per_gpu)


@pytest.mark.parametrize('name', sorted(ENTRIES))
def test_entry_builds_and_matches_its_config(name):
    """The entry's config builds its model on the CPU with its library's
    registry; Epochs, Batch Size and Parameters are the config's."""
    entry = ENTRIES[name]
    cfg = Config.fromfile(osp.join(REPO, entry.config))
    meta = entry.metadata
    if meta.epochs is not None:
        assert meta.epochs == cfg.train_cfg.max_epochs
    if meta.batch_size is not None:
        assert meta.batch_size == batch_size(name, cfg)
    model = build_model(cfg)
    if meta.parameters is not None:
        assert meta.parameters == sum(p.numel() for p in model.parameters())
    expected = expected_backbone(entry.config)
    assert type(model.backbone).__name__ == expected
    # the depth the config's name promises (OpenMMLab's names: fca50, r50,
    # x101, seresnet50, ...)
    named = re.search(r'(?:fcanet|fca|seresnet|resnet|r|x)(\d+)',
                      osp.basename(entry.config))
    assert model.backbone.depth == int(named.group(1)), entry.config
    if 'squeeze_switch' in entry.config or expected == 'FcaNet':
        assert cfg.custom_imports['imports'] == ['mmfca']
