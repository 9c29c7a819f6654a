"""What loads with weights_only=True, and what is refused."""
import argparse
import functools
import http.server
import os.path as osp
import subprocess
import threading

import pytest
import torch

from _helpers import DEMO_CONFIG, REPO, data_options, tool
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


def test_load_checkpoint_refuses_foreign_objects_and_loads_plain_ones(
        tmp_path):
    from mmengine.runner import load_checkpoint
    foreign = str(tmp_path / 'foreign.pth')
    foreign_checkpoint(foreign)
    with pytest.raises(Exception, match='Weights only load failed'):
        load_checkpoint(FcaNet(18), foreign, revise_keys=[(r'^backbone.',
                                                           '')])
    plain = str(tmp_path / 'plain.pth')
    torch.save({'state_dict': FcaNet(18).state_dict()}, plain)
    load_checkpoint(FcaNet(18), plain, strict=True)


def test_urls_load_weights_only(tmp_path, monkeypatch):
    """http(s):// (and the open-mmlab/torchvision/mmcls schemes, which
    fetch through mmengine's load_from_http) go through our loader: a
    foreign file served on loopback is refused, a plain one loads."""
    import mmengine.runner.checkpoint as mmengine_checkpoint
    from mmengine.runner import CheckpointLoader

    from mmfca.utils.checkpoint import load_from_weights_only
    assert mmengine_checkpoint.load_from_http is load_from_weights_only
    serve = tmp_path / 'serve'
    serve.mkdir()
    foreign_checkpoint(str(serve / 'foreign.pth'))
    torch.save({'w': torch.ones(2)}, serve / 'plain.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(serve))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f'http://127.0.0.1:{server.server_address[1]}/'
    try:
        with pytest.raises(Exception, match='Weights only load failed'):
            CheckpointLoader.load_checkpoint(url + 'foreign.pth')
        loaded = CheckpointLoader.load_checkpoint(url + 'plain.pth')
        assert loaded['w'].tolist() == [1., 1.]
    finally:
        server.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize('tool_name', ['test.py', 'train.py'])
def test_tools_refuse_foreign_load_from(tool_name, synthetic_coco, tmp_path):
    """tools/test.py on a file from elsewhere and tools/train.py with
    load_from=... refuse a checkpoint that holds a pickled object."""
    ckpt = str(tmp_path / 'foreign.pth')
    foreign_checkpoint(ckpt)
    work_dir = str(tmp_path / 'work')
    args = [DEMO_CONFIG]
    if tool_name == 'test.py':
        args += [ckpt, '--work-dir', work_dir, '--cfg-options']
    else:
        args += ['--work-dir', work_dir, '--cfg-options', f'load_from={ckpt}',
                 'train_cfg.max_epochs=1']
    proc = subprocess.run(tool(tool_name) + args +
                          data_options(synthetic_coco),
                          cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode != 0
    assert 'Weights only load failed' in proc.stdout, proc.stdout[-3000:]
    assert 'argparse' in proc.stdout  # the refused global is named
    assert not osp.exists(osp.join(work_dir, 'epoch_1.pth'))


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
    from _helpers.release_fcanet import release_fcanet
    src = tmp_path / 'fca18.pth'
    torch.save(release_fcanet(18).state_dict(), src)
    convert_file(str(src), str(tmp_path / 'out.pth'))
    ckpt = torch.load(tmp_path / 'out.pth', weights_only=True)
    assert ckpt['meta']['arch'] == 'FcaNet-18'
