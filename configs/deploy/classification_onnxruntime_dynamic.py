# MMDeploy deploy config: an MMPretrain classifier to ONNX Runtime, dynamic
# batch, height and width, opset 16. Used by tools/deployment/deploy.py
# (docs/deployment.md). MMDeploy's classification_onnxruntime_dynamic.py
# with the image size dynamic too (the FCA layers pool to their filters
# with standard operators at any size); _base_/onnxruntime_dynamic.py
# says the rest. The graph outputs the softmax scores, as MMPretrain's
# predict does.
_base_ = ['./_base_/onnxruntime_dynamic.py']

onnx_config = dict(
    output_names=['output'], dynamic_axes={'output': {0: 'batch'}})
codebase_config = dict(type='mmpretrain', task='Classification')
