"""mmfca.apis.init_model: a detector, a classifier and a segmentor, each
built by its codebase's own builder, the checkpoint loaded strictly under
the trust rule (inside the run's work_dir: fully unpickled; elsewhere:
weights only); refusals in one line."""
import argparse
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from _helpers import DEMO_CONFIG, REPO
from mmfca.apis import init_model

#: By default_scope: a small model of each codebase (FCN FcaNet-18 with
#: narrow heads for MMSegmentation).
CONFIGS = {
    'mmdet': (DEMO_CONFIG, {}),
    'mmpretrain': ('configs/fcanet/fcanet18_8xb32_in1k.py', {}),
    'mmseg': ('configs/seg/fcn_fca50-d8_4xb4-80k_ade20k-512x512.py', {
        'model.backbone.depth': 18, 'model.decode_head.in_channels': 512,
        'model.decode_head.channels': 16,
        'model.auxiliary_head.in_channels': 256,
        'model.auxiliary_head.channels': 16}),
}


def saved(model, path, **meta):
    """``model``'s weights, each parameter + 0.5 (no initialisation gives
    them; the fixed DCT filters, buffers, as they are), and ``meta``."""
    state = dict(model.state_dict(),
                 **{k: v + 0.5 for k, v in model.named_parameters()})
    torch.save(dict(state_dict=state, meta=meta), str(path))
    return state


@pytest.mark.parametrize('scope', list(CONFIGS))
def test_each_codebase_builds_its_model_and_loads_it_strictly(
        scope, tmp_path):
    path, options = CONFIGS[scope]
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.merge_from_dict(options)
    backbone_init = cfg.model.backbone.get('init_cfg')
    initialised = init_model(cfg)
    assert type(initialised).__module__.split('.')[0] == scope
    # beside the weights, an object that only full unpickling loads: the
    # run's own checkpoint (inside work_dir) is trusted
    state = saved(initialised, tmp_path / 'epoch_1.pth',
                  dataset_meta=dict(classes=['a', 'b']),
                  args=argparse.Namespace())
    model = init_model(cfg, str(tmp_path / 'epoch_1.pth'),
                       work_dir=str(tmp_path))
    assert type(model) is type(initialised) and not model.training
    got = model.state_dict()
    assert got.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(got[key], value), key
    assert {t.device.type for t in got.values()} == {'cpu'}
    assert model.dataset_meta == dict(classes=['a', 'b'])
    assert cfg.model.backbone.get('init_cfg') == backbone_init  # unchanged


def test_refusals_are_one_line(tmp_path):
    other = tmp_path / 'other.py'
    other.write_text("default_scope = 'mmocr'\nmodel = dict(type='DBNet')\n")
    with pytest.raises(ValueError, match=r"^the config's default_scope is "
                       r"'mmocr'; allowed: \['mmdet', 'mmpretrain', "
                       r"'mmseg'\]$"):
        init_model(str(other))
    config = osp.join(REPO, CONFIGS['mmpretrain'][0])
    model = init_model(config)
    # not the run's own checkpoint: weights only, the object refused
    ckpt = str(tmp_path / 'work' / 'epoch_1.pth')
    (tmp_path / 'work').mkdir()
    saved(model, ckpt, args=argparse.Namespace())
    for work_dir in (None, str(tmp_path / 'elsewhere')):
        with pytest.raises(ValueError) as err:
            init_model(config, ckpt, work_dir)
        assert str(err.value).startswith(
            f'cannot read checkpoint {ckpt}: mmfca did not load {ckpt}: it '
            'holds argparse.Namespace, beyond tensors')
    # a checkpoint of another model
    state = model.state_dict()
    del state['head.fc.weight']
    torch.save(state, str(tmp_path / 'bare.pth'))  # a bare state dict
    with pytest.raises(ValueError) as err:
        init_model(config, str(tmp_path / 'bare.pth'))
    message = str(err.value)
    assert message.startswith(f'checkpoint {tmp_path}/bare.pth does not fit '
                              "the config's model: ")
    assert 'head.fc.weight' in message
    assert '\n' not in message and len(message) < 400
