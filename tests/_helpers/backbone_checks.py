"""The checks of MMDetection's and MMPretrain's backbone tests
(``tests/test_models/test_backbones/utils.py`` in both), for running their
cases on mmfca's backbones."""
import torch
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from torch.nn import GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm


def is_block(module):
    """Whether ``module`` is a ResNet building block (mmfca's FcaBasicBlock
    is a BasicBlock)."""
    from mmpretrain.models.backbones.resnet import \
        BasicBlock as PretrainBasicBlock
    from mmpretrain.models.backbones.resnet import \
        Bottleneck as PretrainBottleneck
    return isinstance(module, (BasicBlock, Bottleneck, PretrainBasicBlock,
                               PretrainBottleneck))


def is_norm(module):
    """Whether ``module`` is a GroupNorm or a BatchNorm."""
    return isinstance(module, (GroupNorm, _BatchNorm))


def check_norm_state(modules, train_state):
    """Whether every BatchNorm among ``modules`` is in ``train_state``."""
    return all(m.training == train_state for m in modules
               if isinstance(m, _BatchNorm))


def all_zeros(module):
    """Whether the weight (and bias, if any) of ``module`` are all zero."""
    zero = torch.all(module.weight == 0).item()
    if getattr(module, 'bias', None) is not None:
        zero = zero and torch.all(module.bias == 0).item()
    return zero


def stages_frozen(model, frozen_stages):
    """Whether the stem (``conv1`` and ``norm1``, or the deep ``stem``)
    and the first ``frozen_stages`` stages (``layer1`` ...) of ``model``
    are frozen: BatchNorms in eval mode, no parameter trained."""
    stem = [model.stem] if getattr(model, 'deep_stem', False) else [
        model.conv1, model.norm1]
    parts = stem + [getattr(model, f'layer{i}')
                    for i in range(1, frozen_stages + 1)]
    return all(
        check_norm_state(part.modules(), False)
        and not any(p.requires_grad for p in part.parameters())
        for part in parts)
