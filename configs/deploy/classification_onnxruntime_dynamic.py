# MMDeploy deploy config: an MMPretrain classifier to ONNX Runtime, dynamic
# batch, height and width, opset 16. Used by tools/deployment/deploy.py
# (docs/deployment.md). MMDeploy's classification_onnxruntime_dynamic.py
# with the image size dynamic too (the FCA layers pool to their filters
# with standard operators at any size) and optimize=False (MMDeploy's
# graph optimiser is not in the pip wheel). The graph outputs the softmax
# scores, as MMPretrain's predict does.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=16,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    optimize=False,
    dynamic_axes={
        'input': {0: 'batch', 2: 'height', 3: 'width'},
        'output': {0: 'batch'},
    })
codebase_config = dict(type='mmpretrain', task='Classification')
backend_config = dict(type='onnxruntime')
