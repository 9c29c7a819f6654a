"""mmfca.utils.checkpoint: what loads with weights_only=True, what is
refused, and what the trust rule fully unpickles."""
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
from mmfca.utils import TRUSTED_SCHEME, resolve_resume, trusted_checkpoint
from mmfca.utils.checkpoint import (SCOPED_SAFE_GLOBALS, NotACheckpointError,
                                    UnsafeCheckpointError,
                                    load_from_weights_only)


def foreign_checkpoint(path):
    """A checkpoint that also pickles an arbitrary Python object."""
    state = {f'backbone.{k}': v for k, v in FcaNet(18).state_dict().items()}
    torch.save({'state_dict': state, 'meta': argparse.Namespace(a=1)}, path)


def assert_mmfca_refusal(message, path, name):
    """mmfca's own refusal: names the file, the global and the safe
    options; never torch's advice to drop weights_only."""
    assert f'mmfca did not load {path}: it holds {name},' in message
    assert 'Safe options:' in message and '--work-dir' in message
    assert 'fcanet2mmfca.py' in message
    assert 'weights_only=False' not in message
    assert '\n' not in message  # one paragraph


def test_init_cfg_pretrained_refuses_foreign_objects(tmp_path):
    path = str(tmp_path / 'foreign.pth')
    foreign_checkpoint(path)
    model = FcaNet(18, init_cfg=dict(type='Pretrained', checkpoint=path,
                                     prefix='backbone.'))
    with pytest.raises(UnsafeCheckpointError) as err:
        model.init_weights()
    assert_mmfca_refusal(str(err.value), path, 'argparse.Namespace')


def test_load_checkpoint_refuses_foreign_objects_and_loads_plain_ones(
        tmp_path):
    from mmengine.runner import load_checkpoint
    foreign = str(tmp_path / 'foreign.pth')
    foreign_checkpoint(foreign)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(FcaNet(18), foreign, revise_keys=[(r'^backbone.',
                                                           '')])
    assert_mmfca_refusal(str(err.value), foreign, 'argparse.Namespace')
    plain = str(tmp_path / 'plain.pth')
    torch.save({'state_dict': FcaNet(18).state_dict()}, plain)
    load_checkpoint(FcaNet(18), plain, strict=True)


def test_urls_load_weights_only(tmp_path, monkeypatch):
    """http(s):// (and the open-mmlab/torchvision/mmcls schemes, which
    fetch through mmengine's load_from_http) go through our loader: a
    foreign file served on loopback is refused, a plain one and a training
    checkpoint (the same allowlist as local files) load."""
    import mmengine.runner.checkpoint as mmengine_checkpoint
    from mmengine.runner import CheckpointLoader

    from mmfca.utils.checkpoint import load_url_weights_only
    assert mmengine_checkpoint.load_url is load_url_weights_only
    serve = tmp_path / 'serve'
    serve.mkdir()
    foreign_checkpoint(str(serve / 'foreign.pth'))
    torch.save({'w': torch.ones(2)}, serve / 'plain.pth')
    training_checkpoint(str(serve / 'epoch_1.pth'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(serve))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f'http://127.0.0.1:{server.server_address[1]}/'
    try:
        with pytest.raises(UnsafeCheckpointError) as err:
            CheckpointLoader.load_checkpoint(url + 'foreign.pth')
        assert 'argparse.Namespace' in str(err.value)
        assert 'weights_only=False' not in str(err.value)
        loaded = CheckpointLoader.load_checkpoint(url + 'plain.pth')
        assert loaded['w'].tolist() == [1., 1.]
        loaded = CheckpointLoader.load_checkpoint(url + 'epoch_1.pth')
        loss = loaded['message_hub']['log_scalars']['train/loss']
        assert loss.data[0].tolist() == [2.5, 1.25, 0.75]
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
    refusal = [line for line in proc.stdout.splitlines()
               if 'mmfca did not load' in line]
    assert refusal, proc.stdout[-3000:]
    assert_mmfca_refusal(refusal[-1], ckpt, 'argparse.Namespace')
    assert 'weights_only=False' not in proc.stdout
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
    """Marked (fully unpickled) inside the run's work_dir, else as given."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_1.pth').write_bytes(b'')
    inside = TRUSTED_SCHEME + osp.realpath(work / 'epoch_1.pth')
    assert trusted_checkpoint(str(work / 'epoch_1.pth'), str(work)) == inside
    # a relative path that does not exist is taken relative to the work_dir
    assert trusted_checkpoint('epoch_1.pth', str(work)) == inside
    (work / 'link.pth').symlink_to(tmp_path / 'x.pth')
    # outside, escaping through .. or a symlink, a URL, no work_dir
    for outside, work_dir in [(str(tmp_path / 'x.pth'), work),
                              (str(work / '..' / 'x.pth'), work),
                              (str(work / 'link.pth'), work),
                              ('http://host/epoch_1.pth', work),
                              (str(work / 'epoch_1.pth'), None)]:
        assert trusted_checkpoint(outside, work_dir and str(work_dir)) \
            == outside
    with pytest.raises(ValueError, match='outside the run.s work_dir'):
        resolve_resume(str(work), str(work / 'link.pth'))
    assert resolve_resume(str(work), 'epoch_1.pth') == inside


def test_a_missing_local_checkpoint_is_named(tmp_path, monkeypatch):
    from mmengine.runner import CheckpointLoader
    monkeypatch.setenv('HOME', str(tmp_path))
    torch.save({'w': torch.ones(1)}, tmp_path / 'home.pth')
    assert CheckpointLoader.load_checkpoint('~/home.pth')['w'].tolist() \
        == [1.]
    with pytest.raises(FileNotFoundError,
                       match=r'Checkpoint ~?.*missing\.pth can not be found'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'missing.pth'))


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


#: Both ways of load_from_weights_only: torch's weights_only unpickler with
#: scoped safe globals (torch >= 2.6) and the restricted Unpickler (the way
#: of torch < 2.6, which runs everywhere).
needs_scoped = pytest.mark.skipif(
    not SCOPED_SAFE_GLOBALS, reason='torch < 2.6 has no safe_globals that '
    'take (object, name) pairs: the restricted Unpickler only')
WAYS = [pytest.param(True, id='safe_globals', marks=needs_scoped),
        pytest.param(False, id='restricted_unpickler')]


def training_checkpoint(path):
    """What mmengine's Runner saves besides the weights: the message hub
    (HistoryBuffers of numpy values, numpy scalars in runtime_info)."""
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance(f'test-training-checkpoint-{path}')
    for i, loss in enumerate([2.5, 1.25, np.float32(0.75)]):
        hub.update_scalar('train/loss', loss)
        hub.update_scalar('train/lr', np.float64(0.1 / (i + 1)))
    hub.update_info('iter', np.int64(3))
    state = {f'backbone.{k}': v for k, v in FcaNet(18).state_dict().items()}
    torch.save(dict(meta=dict(epoch=1, dataset_meta=dict(classes=('a', ))),
                    state_dict=state, message_hub=hub.state_dict()), path)
    return state, hub


@pytest.mark.parametrize('scoped', WAYS)
def test_training_state_loads_without_foreign_objects(scoped, tmp_path):
    from mmengine.logging import HistoryBuffer
    path = str(tmp_path / 'epoch_1.pth')
    state, hub = training_checkpoint(path)
    if hasattr(torch.serialization, 'get_safe_globals'):
        before = list(torch.serialization.get_safe_globals())
    # plain weights_only refuses it: the training state is what the
    # loader adds
    with pytest.raises(Exception, match='HistoryBuffer|Unsupported'):
        torch.load(path, weights_only=True)
    ckpt = load_from_weights_only(path, scoped=scoped)
    for k, v in state.items():
        assert torch.equal(ckpt['state_dict'][k], v)
    loss = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    assert loss.data[0].tolist() == [2.5, 1.25, 0.75]
    assert loss.mean() == pytest.approx(1.5)  # a statistics method works
    assert ckpt['message_hub']['runtime_info']['iter'] == 3
    if hasattr(torch.serialization, 'get_safe_globals'):
        # allowed for that call only, not process-wide
        assert set(torch.serialization.get_safe_globals()) == set(before)


@pytest.mark.parametrize('scoped', WAYS)
def test_legacy_format_loads_and_is_refused_alike(scoped, tmp_path):
    """torch.save's non-zip format: the training state loads, a foreign
    object is refused by name (read from the object's pickle, the fourth
    in the file)."""
    path = str(tmp_path / 'epoch_1.pth')
    training_checkpoint(path)
    legacy = str(tmp_path / 'legacy.pth')
    torch.save(torch.load(path, weights_only=False), legacy,
               _use_new_zipfile_serialization=False)
    ckpt = load_from_weights_only(legacy, scoped=scoped)
    loss = ckpt['message_hub']['log_scalars']['train/loss']
    assert loss.data[0].tolist() == [2.5, 1.25, 0.75]
    foreign = str(tmp_path / 'foreign.pth')
    torch.save({'w': torch.ones(1), 'meta': argparse.Namespace(a=1)},
               foreign, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_from_weights_only(foreign, scoped=scoped)
    assert_mmfca_refusal(str(err.value), foreign, 'argparse.Namespace')
    # cut short: named as damaged, not refused as holding something else
    cut = str(tmp_path / 'cut.pth')
    with open(legacy, 'rb') as f, open(cut, 'wb') as out:
        out.write(f.read(200))
    with pytest.raises(NotACheckpointError, match=f'{cut} is not a '
                       'checkpoint: it is a truncated or damaged file in '
                       "torch.save's legacy format"):
        load_from_weights_only(cut, scoped=scoped)


class Payload:
    """Unpickling it calls ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize('scoped', WAYS)
def test_code_in_a_checkpoint_is_never_run(scoped, tmp_path):
    import os
    marker = tmp_path / 'ran'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(1)},
                'meta': Payload(os.system, f'touch {marker}')}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_from_weights_only(path, scoped=scoped)
    assert_mmfca_refusal(str(err.value), path,
                         f'{os.system.__module__}.system')
    assert not marker.exists()


@pytest.mark.parametrize('scoped', WAYS)
def test_getattr_reaches_only_history_buffer_statistics(scoped, tmp_path):
    import numpy as np
    from mmengine.logging import HistoryBuffer
    for owner, name in ((HistoryBuffer, 'update'), (np.ndarray, 'tofile'),
                        (HistoryBuffer, '__init__')):
        path = str(tmp_path / f'{name}.pth')
        torch.save({'w': torch.ones(1), 'f': Payload(getattr, owner, name)},
                   path)
        with pytest.raises(UnsafeCheckpointError) as err:
            load_from_weights_only(path, scoped=scoped)
        assert (f'getattr({owner.__name__}, {name!r}) is not allowed'
                in str(err.value))
    path = str(tmp_path / 'mean.pth')
    torch.save({'f': Payload(getattr, HistoryBuffer, 'mean')}, path)
    loaded = load_from_weights_only(path, scoped=scoped)
    assert loaded['f'] is HistoryBuffer.mean


@pytest.mark.parametrize('scoped', WAYS)
def test_files_that_are_not_checkpoints_are_named(scoped, tmp_path):
    import io
    import pickle
    buffer = io.BytesIO()
    torch.save({'w': torch.ones(64)}, buffer)
    import zipfile
    with zipfile.ZipFile(tmp_path / 'other.zip', 'w') as archive:
        archive.writestr('archive/weights.bin', b'0')
    cases = {
        'random.pth': (bytes(range(7, 250)) * 4,
                       r'972 bytes of binary data \(starting with 07 08'),
        'notes.txt': (b'epoch,loss\n1,0.5\n',
                      "a text file starting with 'epoch,loss'"),
        'list.pkl': (pickle.dumps([1, 2, 3]),
                     'a pickle not written by torch.save'),
        'half.pth': (buffer.getvalue()[:300],
                     r'a truncated or damaged zip archive \(300 bytes;'),
        'other.pth': ((tmp_path / 'other.zip').read_bytes(),
                      "a zip archive without torch.save's data.pkl"),
        'empty.pth': (b'', 'an empty file'),
    }
    for name, (data, what) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(NotACheckpointError,
                           match=f'{path} is not a checkpoint: it is {what}'):
            load_from_weights_only(str(path), scoped=scoped)


@needs_scoped
def test_the_torch_version_picks_the_way(tmp_path, monkeypatch):
    """torch >= 2.6 takes the scoped safe globals (torch's own unpickler,
    stricter on what it builds); the restricted Unpickler is for older
    torch only."""
    from mmfca.utils import checkpoint
    calls = []
    monkeypatch.setattr(checkpoint, '_safe_pickle_module',
                        lambda: calls.append(1) or pickle_module_fails())
    path = str(tmp_path / 'epoch_1.pth')
    training_checkpoint(path)
    assert checkpoint.SCOPED_SAFE_GLOBALS
    checkpoint.load_from_weights_only(path)
    assert calls == []


def pickle_module_fails():
    raise AssertionError('the restricted Unpickler was used')
