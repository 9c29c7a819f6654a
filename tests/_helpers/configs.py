"""Config files as plain dicts, compared key by key."""
import os.path as osp

from mmengine.config import Config


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
