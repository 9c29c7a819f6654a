# Copyright (c) mmfca contributors. All rights reserved.
"""Convert the released FcaNet checkpoints to mmfca's layouts.

* ImageNet models (fca34/50/101/152.pth): plain state dicts with
  torchvision's ResNet names plus ``layer{s}.{i}.att.*``; they become an
  MMPretrain ImageClassifier checkpoint (``backbone.*`` + ``head.fc.*``).
* MMDetection 2.x detectors (backbone ``FreqNet``): MMDetection's ResNet
  names plus ``att.*`` under ``backbone.``; the backbone keys are checked
  and everything else is carried over for MMDetection 3.x.

mmfca's FcaNet keeps the release's names (``bn1``, ``downsample.0/1``,
``att.fc.0``, ``att.dct_layer.weight``), so the conversion is a check that
every key and shape matches plus a re-prefixing. Output files hold tensors
and plain data only: they load with ``torch.load(weights_only=True)``.
"""
import os
import os.path as osp
import tempfile
from typing import Dict, Tuple

import torch

from mmfca.models.backbones.fcanet import FcaNet
from mmfca.utils.checkpoint import (NotACheckpointError,
                                    UnsafeCheckpointError, describe_file,
                                    load_from_weights_only)
from mmfca.version import __version__

KINDS = ('imagenet', 'detector')


class ConversionError(ValueError):
    """The source is not a released FcaNet checkpoint of the expected kind."""


#: What the converter reads, for its error messages.
EXPECTED = ('a released FcaNet checkpoint: a state dict saved with '
            'torch.save (fca34/50/101/152.pth) or an MMDetection 2.x FcaNet '
            '(FreqNet) detector checkpoint')


def _one_line(err: Exception) -> str:
    return ' '.join(f'{type(err).__name__}: {err}'.split())[:300]


def read_checkpoint(path: str, trust: bool = False) -> dict:
    """Read a checkpoint file.

    Args:
        path (str): File to read.
        trust (bool): Fully unpickle it (only for files you trust; MMDet 2.x
            checkpoints may hold non-tensor objects). Defaults to False
            (:func:`mmfca.utils.checkpoint.load_from_weights_only`: tensors,
            plain data and mmengine's training state).

    Returns:
        dict: The loaded object.

    Raises:
        ConversionError: One line naming the file and what was expected:
            the file is not a ``torch.save`` checkpoint (random bytes, text,
            another pickle), is damaged, holds no dict, or (only then the
            advice to pass ``--trust-source``) is a ``torch.save`` file that
            holds objects beyond tensors and plain data.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Source checkpoint {path} does not exist.')

    def not_a_checkpoint(what):
        return ConversionError(f'{path} is not a checkpoint: it is {what}; '
                               f'expected {EXPECTED}.')

    what = trust and describe_file(path)  # else the loader describes it
    if what:
        raise not_a_checkpoint(what)
    try:
        if trust:
            obj = torch.load(path, map_location='cpu', weights_only=False)
        else:
            obj = load_from_weights_only(path, map_location='cpu')
    except NotACheckpointError as err:
        raise not_a_checkpoint(err.what) from None
    except UnsafeCheckpointError as err:
        held = ', '.join(err.names) or 'objects other than tensors'
        raise ConversionError(
            f'{path} is a checkpoint that also holds {held}, so it was not '
            f'unpickled (that would run code from the file). If you trust '
            f'the file, pass --trust-source.') from None
    except Exception as err:  # noqa: B902 (torch raises many kinds here)
        raise ConversionError(
            f'Cannot read {path}: the file is truncated or damaged '
            f'({_one_line(err)}); expected {EXPECTED}.') from err
    if not isinstance(obj, dict):
        raise ConversionError(
            f'{path} is not a checkpoint: it holds a '
            f'{type(obj).__name__}, not a dict of tensors; expected '
            f'{EXPECTED}.')
    return obj


def _strip(state: Dict[str, torch.Tensor], prefix: str) -> Dict:
    return {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix)}


def detect_depth(backbone_state: Dict[str, torch.Tensor]) -> int:
    """The FcaNet depth whose block layout the keys show.

    Raises:
        ConversionError: If the keys are not an FcaNet's.
    """
    if not any('.att.' in k for k in backbone_state):
        raise ConversionError(
            'Not an FcaNet checkpoint: no FCA layer keys (layer*.*.att.*). '
            f'First keys: {sorted(backbone_state)[:5]}.')
    blocks = []
    for stage in range(1, 5):
        ids = {int(k.split('.')[1]) for k in backbone_state
               if k.startswith(f'layer{stage}.')}
        blocks.append(max(ids) + 1 if ids else 0)
    bottleneck = any('.conv3.' in k for k in backbone_state)
    for depth, (block, layout) in FcaNet.arch_settings.items():
        is_bottleneck = block.expansion == 4
        if tuple(blocks) == layout and is_bottleneck == bottleneck:
            return depth
    kind = 'Bottleneck' if bottleneck else 'BasicBlock'
    raise ConversionError(
        f'Block layout {tuple(blocks)} ({kind}) matches no FcaNet depth; '
        f'allowed: '
        f'{ {d: s[1] for d, s in FcaNet.arch_settings.items()} }.')


def _check_keys(found: Dict[str, torch.Tensor], expected: Dict[str, tuple],
                what: str) -> None:
    unknown = sorted(set(found) - set(expected))
    missing = sorted(set(expected) - set(found))
    wrong = sorted(k for k in set(found) & set(expected)
                   if tuple(found[k].shape) != expected[k])
    if unknown or missing or wrong:
        lines = [f'{what} does not match the FcaNet layout:']
        if unknown:
            lines.append(f'  unknown keys ({len(unknown)}): {unknown}')
        if missing:
            lines.append(f'  missing keys ({len(missing)}): {missing}')
        for k in wrong:
            lines.append(f'  shape of {k}: {tuple(found[k].shape)}, '
                         f'expected {expected[k]}')
        raise ConversionError('\n'.join(lines))


def expected_backbone_shapes(depth: int) -> Dict[str, tuple]:
    """Key -> shape of mmfca's FcaNet of ``depth`` (default options)."""
    return {k: tuple(v.shape) for k, v in FcaNet(depth).state_dict().items()}


def convert_imagenet(state: Dict[str, torch.Tensor]) -> Tuple[dict, int]:
    """Released ImageNet state dict -> MMPretrain ImageClassifier one.

    Returns:
        tuple[dict, int]: The new state dict and the detected depth.
    """
    if 'state_dict' in state and isinstance(state['state_dict'], dict):
        state = state['state_dict']
    if state and all(k.startswith('module.') for k in state):
        state = _strip(state, 'module.')  # saved from DataParallel
    head = {k: v for k, v in state.items() if k in ('fc.weight', 'fc.bias')}
    backbone = {k: v for k, v in state.items() if k not in head}
    depth = detect_depth(backbone)
    _check_keys(backbone, expected_backbone_shapes(depth),
                'The ImageNet checkpoint')
    feat = 512 * FcaNet.arch_settings[depth][0].expansion
    if set(head) != {'fc.weight', 'fc.bias'} or \
            head['fc.weight'].shape[1] != feat:
        raise ConversionError(
            f'Expected the classifier fc.weight (N x {feat}) and fc.bias; '
            f'found {[(k, tuple(v.shape)) for k, v in head.items()]}.')
    out = {f'backbone.{k}': v for k, v in backbone.items()}
    out.update({f'head.{k}': v for k, v in head.items()})
    return out, depth


def convert_detector(ckpt: dict) -> Tuple[dict, int]:
    """MMDetection 2.x FcaNet (``FreqNet``) detector -> MMDetection 3.x.

    Returns:
        tuple[dict, int]: The new state dict and the detected depth.
    """
    state = ckpt.get('state_dict', ckpt)
    backbone = _strip(state, 'backbone.')
    if not backbone:
        raise ConversionError('Not a detector checkpoint: no backbone.* keys.')
    depth = detect_depth(backbone)
    _check_keys(backbone, expected_backbone_shapes(depth),
                'The detector\'s backbone')
    return dict(state), depth


def detect_kind(ckpt: dict) -> str:
    """``'detector'`` if the state dict has ``backbone.*`` keys, else
    ``'imagenet'``."""
    state = ckpt.get('state_dict', ckpt)
    return 'detector' if any(
        isinstance(k, str) and k.startswith('backbone.') for k in state) \
        else 'imagenet'


def save_atomic(obj, dst: str, force: bool = False) -> None:
    """``torch.save`` to ``dst`` through a temporary file and a rename, so a
    failure never leaves a half-written ``dst``.

    Raises:
        FileExistsError: If ``dst`` exists and ``force`` is False.
    """
    if osp.exists(dst) and not force:
        raise FileExistsError(f'{dst} exists; not overwriting it (pass '
                              f'--force to replace it).')
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(dst), dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        os.replace(tmp, dst)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def convert_file(src: str, dst: str, kind: str = 'auto',
                 force: bool = False, trust_source: bool = False) -> dict:
    """Convert ``src`` into ``dst``; see the module docstring.

    Args:
        src (str): Released checkpoint.
        dst (str): Output path (refused if it exists, unless ``force``).
        kind (str): ``'auto'``, ``'imagenet'`` or ``'detector'``.
        force (bool): Replace an existing ``dst``.
        trust_source (bool): Fully unpickle ``src``.

    Returns:
        dict: The ``meta`` written.
    """
    if kind not in ('auto', ) + KINDS:
        raise ValueError(f'Unknown kind {kind!r}; allowed: auto, '
                         f'{", ".join(KINDS)}.')
    if osp.exists(dst) and not force:  # before any work
        raise FileExistsError(f'{dst} exists; not overwriting it (pass '
                              f'--force to replace it).')
    ckpt = read_checkpoint(src, trust=trust_source)
    kind = detect_kind(ckpt) if kind == 'auto' else kind
    try:
        if kind == 'imagenet':
            state, depth = convert_imagenet(ckpt)
        else:
            state, depth = convert_detector(ckpt)
    except ConversionError as err:
        raise ConversionError(f'{src}: {err}') from None
    meta = dict(
        converted_from=osp.basename(src), kind=kind, depth=depth,
        arch=f'FcaNet-{depth}', converter=f'mmfca {__version__}')
    if kind == 'detector' and isinstance(ckpt.get('meta'), dict):
        classes = ckpt['meta'].get('CLASSES')
        if classes is not None:
            meta['dataset_meta'] = dict(classes=tuple(map(str, classes)))
    save_atomic(dict(meta=meta, state_dict=state), dst, force=force)
    return meta
