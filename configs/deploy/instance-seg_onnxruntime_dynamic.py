# MMDeploy deploy config: an MMDetection instance segmentation model (boxes
# and masks, e.g. Mask R-CNN) to ONNX Runtime, dynamic batch, height and
# width, opset 16: detection_onnxruntime_dynamic.py (its notes) plus the
# masks output. As MMDeploy's instance-seg_onnxruntime_dynamic.py, the
# graph outputs each detection's 28x28 mask probabilities; MMDeploy's
# End2EndModel pastes them into the image in Python, as MMDetection does.
_base_ = ['./detection_onnxruntime_dynamic.py']

onnx_config = dict(
    output_names=['dets', 'labels', 'masks'],
    dynamic_axes={'masks': {0: 'batch', 1: 'num_dets'}})
# (the task stays ObjectDetection: MMDeploy's mmdet codebase has no other
# for Mask R-CNN; the masks output makes it an instance segmentation model)
codebase_config = dict(post_processing=dict(export_postprocess_mask=False))
