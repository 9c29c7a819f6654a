"""What loads with weights_only=True, and what is refused."""
import argparse
import os.path as osp

import pytest
import torch

from conftest import REPO
from mmfca.converters import ConversionError, convert_file
from mmfca.models import FcaNet
from mmfca.utils import TRUSTED_SCHEME, mark_trusted


def foreign_checkpoint(path):
    """A checkpoint that also pickles an arbitrary Python object."""
    state = {f'backbone.{k}': v for k, v in FcaNet(18).state_dict().items()}
    torch.save({'state_dict': state, 'meta': argparse.Namespace(a=1)}, path)


def test_init_cfg_pretrained_refuses_foreign_objects(tmp_path):
    path = str(tmp_path / 'foreign.pth')
    foreign_checkpoint(path)
    model = FcaNet(18, init_cfg=dict(type='Pretrained', checkpoint=path,
                                     prefix='backbone.'))
    with pytest.raises(Exception, match='Weights only load failed'):
        model.init_weights()


def test_converter_refuses_foreign_objects_unless_trusted(tmp_path):
    src = str(tmp_path / 'foreign.pth')
    foreign_checkpoint(src)
    with pytest.raises(ConversionError, match='--trust-source'):
        convert_file(src, str(tmp_path / 'out.pth'))
    assert not osp.exists(tmp_path / 'out.pth')
    meta = convert_file(src, str(tmp_path / 'out.pth'), trust_source=True)
    assert meta['kind'] == 'detector'
    torch.load(tmp_path / 'out.pth', weights_only=True)


def test_trust_is_limited_to_the_work_dir(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_1.pth').write_bytes(b'')
    assert mark_trusted(str(work / 'epoch_1.pth'), str(work)) == \
        TRUSTED_SCHEME + osp.realpath(work / 'epoch_1.pth')
    assert mark_trusted('epoch_1.pth', str(work)) is not None
    assert mark_trusted(str(tmp_path / 'x.pth'), str(work)) is None
    # no escape through .. or a symlink
    assert mark_trusted(str(work / '..' / 'x.pth'), str(work)) is None
    (work / 'link.pth').symlink_to(tmp_path / 'x.pth')
    assert mark_trusted(str(work / 'link.pth'), str(work)) is None


def test_rng_state_hook_round_trips_through_weights_only(tmp_path):
    import random

    import numpy as np

    from mmfca.engine import RNGStateHook
    hook = RNGStateHook()
    ckpt = {'meta': {}}
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    hook.before_save_checkpoint(None, ckpt)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    torch.save(ckpt, tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth', weights_only=True)
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    hook.after_load_checkpoint(None, loaded)
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def test_converted_checkpoints_hold_only_tensors_and_plain_data(tmp_path):
    import sys
    sys.path.insert(0, osp.join(REPO, 'tests', 'converters'))
    from release_fcanet import release_fcanet
    src = tmp_path / 'fca18.pth'
    torch.save(release_fcanet(18).state_dict(), src)
    convert_file(str(src), str(tmp_path / 'out.pth'))
    ckpt = torch.load(tmp_path / 'out.pth', weights_only=True)
    assert ckpt['meta']['arch'] == 'FcaNet-18'
