"""Config files as plain dicts, compared key by key; models built from
them."""
import importlib
import os.path as osp

from mmengine.config import Config
from mmengine.registry import DefaultScope


def unscoped(obj):
    """Drop the ``_scope_='mmdet'`` tags that ``mmdet::`` inheritance adds
    to every typed dict (default_scope is mmdet either way)."""
    if isinstance(obj, dict):
        return {k: unscoped(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(unscoped(v) for v in obj)
    return obj


def load_dict(path):
    """The resolved config at ``path`` as a plain, unscoped dict."""
    return unscoped(Config.fromfile(path).to_dict())


def mmdet_config(rel):
    """Path of a config shipped inside the installed MMDetection."""
    import mmdet
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', rel)


def diff_keys(ours, theirs, prefix=''):
    """Dotted keys whose values differ between two config dicts."""
    keys = set(ours) | set(theirs)
    out = set()
    for k in keys:
        a, b = ours.get(k), theirs.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out |= diff_keys(a, b, f'{prefix}{k}.')
        elif a != b:
            out.add(prefix + k)
    return out


def build_model(cfg):
    """The model of a loaded config, built on the CPU by the registry of its
    ``default_scope`` (mmdet, mmpretrain or mmseg). Only built: nothing is
    initialised, so a ``Pretrained`` init_cfg is not read (no download, no
    checkpoint needed)."""
    scope = cfg.default_scope
    registry = {
        'mmdet': 'mmdet.registry', 'mmpretrain': 'mmpretrain.registry',
        'mmseg': 'mmseg.registry'}[scope]
    models = importlib.import_module(registry).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return models.build(cfg.model)
