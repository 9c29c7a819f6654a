"""mmengine's ``load_from_http`` (behind http(s)://, open-mmlab://, ...)
downloads through mmfca's ``load_url``: ``model_dir`` and ``progress``
reach the download, the file loads weights only."""
import functools
import http.server
import os
import threading

import mmengine.runner.checkpoint as mmengine_checkpoint
import pytest
import torch

from mmfca.utils.checkpoint import UnsafeCheckpointError


class QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A loopback HTTP server over a folder with a plain checkpoint and one
    that pickles an arbitrary object; yields (base URL, folder)."""
    import argparse
    serve = tmp_path / 'serve'
    serve.mkdir()
    torch.save({'w': torch.arange(3.)}, serve / 'plain.pth')
    torch.save({'w': torch.ones(1), 'meta': argparse.Namespace(a=1)},
               serve / 'foreign.pth')
    handler = functools.partial(QuietHandler, directory=str(serve))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/'
    finally:
        server.shutdown()


def test_model_dir_and_progress_reach_the_download(served, tmp_path,
                                                   capsys):
    load_from_http = mmengine_checkpoint.load_from_http
    model_dir = tmp_path / 'downloads'
    ckpt = load_from_http(served + 'plain.pth', map_location='cpu',
                          model_dir=str(model_dir), progress=False)
    assert ckpt['w'].tolist() == [0., 1., 2.]
    assert sorted(os.listdir(model_dir)) == ['plain.pth']
    # progress=False: no bar (torch 2.1 still names the download)
    assert '%' not in capsys.readouterr().err
    # positionally, in mmengine's order, with a progress bar
    ckpt = load_from_http(served + 'plain.pth', 'cpu',
                          str(tmp_path / 'other'), True)
    assert ckpt['w'].tolist() == [0., 1., 2.]
    assert '100%' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / 'other')) == ['plain.pth']
    # and still weights_only, refused with mmfca's message
    with pytest.raises(UnsafeCheckpointError,
                       match=r'did not load .*foreign\.pth.*argparse'):
        load_from_http(served + 'foreign.pth', model_dir=str(model_dir),
                       progress=False)
