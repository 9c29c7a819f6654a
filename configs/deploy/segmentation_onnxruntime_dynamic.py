# MMDeploy deploy config: an MMSegmentation segmentor to ONNX Runtime,
# dynamic batch, height and width, opset 16. Used by
# tools/deployment/deploy.py (docs/deployment.md). MMDeploy's
# segmentation_onnxruntime_dynamic.py (_base_/onnxruntime_dynamic.py says
# what differs). The graph outputs each pixel's label
# at the network's input size (the argmax in the graph); MMDeploy resizes
# the labels to the image (nearest), where MMSegmentation resizes the
# logits: labels may differ along class boundaries.
_base_ = ['./_base_/onnxruntime_dynamic.py']

onnx_config = dict(
    output_names=['output'],
    dynamic_axes={'output': {0: 'batch', 2: 'height', 3: 'width'}})
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
