# MMDeploy deploy config: an MMSegmentation segmentor to ONNX Runtime,
# dynamic batch, height and width, opset 16. Used by
# tools/deployment/deploy.py (docs/deployment.md). MMDeploy's
# segmentation_onnxruntime_dynamic.py with optimize=False (MMDeploy's graph
# optimiser is not in the pip wheel). The graph outputs each pixel's label
# at the network's input size (the argmax in the graph); MMDeploy resizes
# the labels to the image (nearest), where MMSegmentation resizes the
# logits: labels may differ along class boundaries.
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
        'output': {0: 'batch', 2: 'height', 3: 'width'},
    })
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
backend_config = dict(type='onnxruntime')
