# Copyright (c) mmfca contributors. All rights reserved.
"""FcaNet backbones: MMDetection's ResNet with an FCA layer in every block."""
import os.path as osp

import torch.utils.checkpoint as cp
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmengine.registry import MODELS

#: DCT filter side per stage, fixed by the 224x224 ImageNet input.
STAGE_DCT_SIZES = (56, 28, 14, 7)


class InvalidDepthError(KeyError, ValueError):
    """A depth that the backbone has no architecture for.

    Both a ``KeyError``, as MMDetection's and MMPretrain's ResNets raise
    (their tests expect one), and a ``ValueError``, as a bad argument is.
    Its message reads as written (``KeyError`` alone would quote it).
    """

    def __str__(self):
        return str(self.args[0]) if self.args else ''


class FcaBasicBlock(BasicBlock):
    """MMDetection's BasicBlock with plugin support.

    MMDetection's BasicBlock takes no plugins. This one takes them at
    ``'after_conv1'`` (after norm1 and its ReLU) and ``'after_conv2'``
    (after norm2, before the identity is added: FCA's place), built and
    run by MMDetection's own Bottleneck methods
    (:meth:`make_block_plugins`, :meth:`forward_plugin`), so that plugins
    get the same names (``att``, ``context_block1``, ...) as in a
    Bottleneck.

    Args:
        plugins (list[dict], optional): ``dict(cfg=..., position=...)``
            entries, as for MMDetection's Bottleneck. Defaults to None.
        **kwargs: Every other argument of
            :class:`mmdet.models.backbones.resnet.BasicBlock`.
    """
    allowed_positions = ('after_conv1', 'after_conv2')

    # MMDetection's Bottleneck builds its plugins and runs them with these;
    # they use nothing of Bottleneck but nn.Module's add_module/getattr.
    make_block_plugins = Bottleneck.make_block_plugins
    forward_plugin = Bottleneck.forward_plugin

    def __init__(self, inplanes, planes, plugins=None, **kwargs):
        super().__init__(inplanes, planes, plugins=None, **kwargs)
        plugins = plugins or []
        for p in plugins:
            if p['position'] not in self.allowed_positions:
                raise ValueError(
                    f'BasicBlock plugin position {p["position"]!r} is not '
                    f'allowed; allowed: {self.allowed_positions}.')
        self.with_plugins = bool(plugins)
        for position in self.allowed_positions:
            cfgs = [p['cfg'] for p in plugins if p['position'] == position]
            setattr(self, f'{position}_plugin_names',
                    self.make_block_plugins(planes, cfgs))

    def forward(self, x):
        """Forward function."""

        def _inner_forward(x):
            identity = x
            out = self.relu(self.norm1(self.conv1(x)))
            out = self.forward_plugin(out, self.after_conv1_plugin_names)
            out = self.norm2(self.conv2(out))
            out = self.forward_plugin(out, self.after_conv2_plugin_names)
            if self.downsample is not None:
                identity = self.downsample(x)
            return out + identity

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


@MODELS.register_module()
class FcaNet(ResNet):
    """FcaNet backbone of `FcaNet: Frequency Channel Attention Networks
    <https://arxiv.org/abs/2012.11879>`_.

    MMDetection's :class:`~mmdet.models.backbones.ResNet` with a
    :class:`~mmfca.models.MultiSpectralAttention` in every residual block,
    on the residual branch after its last norm layer and before the identity
    is added (Bottleneck: ``after_conv3`` plugin; BasicBlock: after norm2).
    Stage ``i`` uses a ``STAGE_DCT_SIZES[i]`` square filter (56, 28, 14, 7);
    other feature sizes are adaptively pooled to it, as in the release.
    The FCA plugins come first; user ``plugins`` follow them.

    Args:
        depth (int): 18, 34, 50, 101 or 152; another raises
            :class:`InvalidDepthError` (a ``KeyError``, as MMDetection's
            ResNet raises, and a ``ValueError``).
        reduction (int): Squeeze ratio of the FCA layers. Defaults to 16.
        freq_sel_method (str | list): Frequency selection of the FCA layers
            (see :func:`mmfca.models.get_grid_freqs`). Defaults to
            ``'top16'``.
        learnable_filter (bool): Ablation switch, see
            :class:`~mmfca.models.MultiSpectralAttention`. Defaults to False.
        filter_init (str): Ablation switch, ``'dct'`` or ``'random'``.
            Defaults to ``'dct'``.
        contract_dilation (bool): Halve the dilation of the first block of
            each dilated stage, as MMSegmentation's ResNetV1c baselines do
            (with ``deep_stem=True``). Defaults to False.
        **kwargs: Every other argument of MMDetection's ResNet (style,
            strides, dilations, out_indices, frozen_stages, norm_cfg,
            norm_eval, with_cp, dcn, stage_with_dcn, plugins, deep_stem,
            avg_down, init_cfg, ...).

    Example:
        >>> import torch
        >>> from mmfca.models import FcaNet
        >>> model = FcaNet(depth=50, out_indices=(0, 1, 2, 3)).eval()
        >>> outs = model(torch.rand(1, 3, 224, 224))
        >>> [tuple(o.shape[1:]) for o in outs]
        [(256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
    """
    arch_settings = {
        18: (FcaBasicBlock, (2, 2, 2, 2)),
        34: (FcaBasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3))
    }

    def __init__(self,
                 depth,
                 reduction=16,
                 freq_sel_method='top16',
                 learnable_filter=False,
                 filter_init='dct',
                 contract_dilation=False,
                 plugins=None,
                 zero_init_residual=True,
                 init_cfg=None,
                 pretrained=None,
                 **kwargs):
        if depth not in self.arch_settings:
            raise InvalidDepthError(
                f'Unknown FcaNet depth {depth!r}; allowed: '
                f'{sorted(self.arch_settings)}.')
        num_stages = kwargs.get('num_stages', 4)
        block = self.arch_settings[depth][0]
        position = 'after_conv3' if block is Bottleneck else 'after_conv2'
        fca_plugins = [
            dict(
                cfg=dict(
                    type='MultiSpectralAttention',
                    dct_h=size,
                    dct_w=size,
                    reduction=reduction,
                    freq_sel_method=freq_sel_method,
                    learnable_filter=learnable_filter,
                    filter_init=filter_init,
                    # the block never reuses the FCA's input
                    inplace=True),
                position=position,
                stages=tuple(i == stage for i in range(num_stages)))
            for stage, size in enumerate(STAGE_DCT_SIZES[:num_stages])
        ]
        # ResNet zero-initialises the last norm of each residual branch by
        # checking `block is BasicBlock`; do the same for our BasicBlock.
        self.contract_dilation = contract_dilation
        self._zero_init_basic = (
            block is FcaBasicBlock and zero_init_residual and init_cfg is None
            and pretrained is None)
        super().__init__(
            depth,
            plugins=fca_plugins + list(plugins or []),
            zero_init_residual=zero_init_residual,
            init_cfg=init_cfg,
            pretrained=pretrained,
            **kwargs)

    def make_res_layer(self, **kwargs):
        """Pack all blocks in a stage into a ``ResLayer``."""
        if self._zero_init_basic:
            kwargs['init_cfg'] = dict(
                type='Constant', val=0, override=dict(name='norm2'))
        layer = super().make_res_layer(**kwargs)
        dilation = kwargs['dilation']
        if self.contract_dilation and dilation > 1:
            first = layer[0]
            # the dilated conv: conv2 in a Bottleneck, conv1 in a BasicBlock
            bottleneck = isinstance(first, Bottleneck)
            conv = first.conv2 if bottleneck else first.conv1
            conv.dilation = conv.padding = (dilation // 2, ) * 2
            first.dilation = dilation // 2
        return layer

    def init_weights(self):
        """Initialise, loading ``init_cfg``'s Pretrained checkpoint if any.

        Raises:
            FileNotFoundError: If a Pretrained checkpoint is a local path that
                does not exist; the message says how to produce it.
            ValueError: If a Pretrained checkpoint holds no FCA weights at
                all (a plain ResNet's, such as ``torchvision://resnet50``,
                which MMDetection's ResNet configs set): loading it would
                leave every FCA layer random behind a missing-keys warning.
                The message says how to proceed.
        """
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) \
            else [self.init_cfg]
        for cfg in cfgs:
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
                self._check_pretrained(cfg.get('checkpoint'),
                                       cfg.get('prefix'))
        super().init_weights()

    def _check_pretrained(self, ckpt, prefix):
        """Refuse a Pretrained checkpoint that cannot be an FcaNet's."""
        from mmengine.runner import CheckpointLoader

        from ..layers import MultiSpectralAttention
        if not isinstance(ckpt, str):
            return
        if '://' not in ckpt and not osp.isfile(ckpt):
            raise FileNotFoundError(
                f'FcaNet pretrained checkpoint {ckpt} not found (init_cfg of '
                f'the backbone). Convert the released ImageNet weights with\n'
                f'  python tools/model_converters/fcanet2mmfca.py '
                f'fca{self.depth}.pth {ckpt}\n'
                f'or train from scratch with '
                f'--cfg-options model.backbone.init_cfg=None.')
        zoo = ckpt.split('://')[0]
        if zoo in ('torchvision', 'open-mmlab', 'openmmlab', 'mmcls',
                   'modelzoo'):
            # named model zoos of torchvision and OpenMMLab: no FcaNet there
            why = f'{zoo}:// names a model zoo without FcaNet weights'
        else:
            state = CheckpointLoader.load_checkpoint(ckpt, map_location='cpu')
            state = state.get('state_dict', state)
            keys = [k[len(prefix or ''):] for k in state
                    if k.startswith(prefix or '')]
            if not keys:
                return  # mmengine says that the prefix matches nothing
            fca = tuple(f'{name}.' for name, m in self.named_modules()
                        if isinstance(m, MultiSpectralAttention))
            if any(k.startswith(fca) or k.startswith(tuple(
                    'module.' + p for p in fca)) for k in keys):
                return
            under = f" under prefix '{prefix}'" if prefix else ''
            why = (f'none of its {len(keys)} entries{under} belongs to an '
                   f'FCA layer ({fca[0]}*, ...): it is a plain ResNet\'s')
        if self.depth in (34, 50, 101, 152):  # the released depths
            proceed = (
                f'either\n  * start from the released FcaNet-{self.depth} '
                f'ImageNet weights (fca{self.depth}.pth, linked from '
                f'https://github.com/cfzd/FcaNet), converted with\n'
                f'      python tools/model_converters/fcanet2mmfca.py '
                f'fca{self.depth}.pth checkpoints/fcanet{self.depth}_in1k.pth'
                f"\n    and init_cfg=dict(type='Pretrained', prefix="
                f"'backbone.', checkpoint='checkpoints/fcanet{self.depth}"
                f"_in1k.pth'), or\n  * train the backbone from scratch with "
                f'init_cfg=None.')
        else:
            proceed = (f'train the backbone from scratch with init_cfg=None '
                       f'(the release publishes no FcaNet-{self.depth} '
                       f'weights; its depths are 34, 50, 101 and 152).')
        raise ValueError(
            f'FcaNet-{self.depth} refuses the init_cfg Pretrained checkpoint '
            f'{ckpt!r}: it holds no FCA weights ({why}). Loading it would '
            f'warm-start the convolutions and leave every FCA layer random, '
            f'with only a missing-keys warning. To proceed, {proceed}\n'
            f'A config that inherits from an MMDetection ResNet config keeps '
            f"ResNet's init_cfg (checkpoint='torchvision://resnet50') unless "
            f"the backbone is written with _delete_=True: backbone=dict("
            f"_delete_=True, type='FcaNet', depth={self.depth}, "
            f'init_cfg=...).')

    def train(self, mode=True):
        """MMDetection's ``ResNet.train``, returning ``self`` as
        :meth:`torch.nn.Module.train` does (the parent returns None), so that
        ``model.eval()`` and ``model.train()`` chain.

        Returns:
            FcaNet: ``self``.
        """
        super().train(mode)
        return self
