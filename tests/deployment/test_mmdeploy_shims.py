"""mmfca.deployment.mmdeploy_shims: what MMDeploy 1.3.1 needs from torch
>= 2.9, applied only inside the export's ``with`` block, and only on the
torch versions that changed."""
import torch
import torch.onnx.symbolic_opset9 as opset9

from mmfca.deployment.mmdeploy_shims import (SHIMS, mmdeploy_export_shims,
                                             needed_shims)


def test_versions_decide_the_shims():
    assert needed_shims('2.1.2+cu121') == []
    assert needed_shims('2.9.0a0+git1234') == list(SHIMS)  # a nightly
    assert needed_shims('2.8.0') == []
    assert needed_shims('2.9.0') == list(SHIMS) == [
        'dynamo_false_by_default', 'cast_long_symbolic']
    assert needed_shims('2.14.1+cu130') == list(SHIMS)


def test_nothing_is_patched_outside_the_block():
    export = torch.onnx.export
    had_cast = hasattr(opset9, '_cast_Long')
    with mmdeploy_export_shims() as applied:
        assert applied == [n for n in needed_shims()
                           if not (n == 'cast_long_symbolic' and had_cast)]
    assert torch.onnx.export is export
    assert hasattr(opset9, '_cast_Long') == had_cast
    # an old torch's version: no shim, nothing touched
    with mmdeploy_export_shims('2.1.2') as applied:
        assert applied == []
        assert torch.onnx.export is export


def test_torch_is_restored_when_the_export_fails():
    export = torch.onnx.export
    had_cast = hasattr(opset9, '_cast_Long')
    try:
        with mmdeploy_export_shims('2.9.0'):
            raise KeyError('export failed')
    except KeyError:
        pass
    assert torch.onnx.export is export
    assert hasattr(opset9, '_cast_Long') == had_cast


class _Round(torch.nn.Module):
    """Casts to int64 through the shimmed symbolic (what MMDeploy's RoIAlign
    symbolic does with the RoIs' batch indices)."""

    class Fn(torch.autograd.Function):

        @staticmethod
        def forward(ctx, x):
            return x.long()

        @staticmethod
        def symbolic(g, x):
            from torch.onnx.symbolic_opset9 import _cast_Long
            return _cast_Long(g, x, False)

    def forward(self, x):
        return self.Fn.apply(x) + 1


def test_the_shimmed_export_traces_and_casts(tmp_path):
    """Under the shims (this torch's: none on torch 2.1) a plain
    ``torch.onnx.export`` call (MMDeploy's) runs the TorchScript exporter
    (a symbolic runs: torch >= 2.9 would try the dynamo exporter and fail
    without onnxscript), and a symbolic importing ``_cast_Long`` exports a
    Cast to int64 that onnxruntime runs."""
    import onnx
    import onnxruntime as ort
    path = str(tmp_path / 'cast.onnx')
    with mmdeploy_export_shims():
        torch.onnx.export(_Round(), (torch.tensor([1.5, 2.0]), ), path,
                          opset_version=16, input_names=['x'])
    graph = onnx.load(path).graph
    casts = [n for n in graph.node if n.op_type == 'Cast']
    assert [a.i for n in casts for a in n.attribute if a.name == 'to'] == [
        onnx.TensorProto.INT64]
    out, = ort.InferenceSession(path, providers=[
        'CPUExecutionProvider']).run(None, {'x': [1.5, 2.0]})
    assert out.tolist() == [2, 3]
