# What every deploy config of configs/deploy/ shares: ONNX Runtime, opset
# 16, dynamic batch, height and width of the input, optimize=False
# (MMDeploy's graph optimiser is a compiled extension the pip wheel does not
# include; it would only warn). As MMDeploy's configs/_base_/onnx_config.py
# and backends/onnxruntime.py, which the mmdeploy package does not ship.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=16,
    save_file='end2end.onnx',
    input_names=['input'],
    input_shape=None,
    optimize=False,
    dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'}})
backend_config = dict(type='onnxruntime')
