# MMDeploy deploy config: an MMDetection detector (boxes) to ONNX Runtime,
# dynamic batch, height and width, opset 16. Used by
# tools/deployment/deploy.py (docs/deployment.md); what every deploy config
# shares is in _base_/ (the mmdeploy package ships no configs). Same keys as
# MMDeploy's configs/mmdet/detection/detection_onnxruntime_dynamic.py; what
# differs:
#
# - opset 16 (MMDeploy: 11): ONNX's RoiAlign gained
#   coordinate_transformation_mode in opset 16, so mmcv's aligned RoIAlign
#   is exported as it is; at opset 11 MMDeploy emulates it with a shifted
#   RoI and 4 of 34 images of a Mask R-CNN differed from PyTorch;
# - post-processing closer to MMDetection's test_cfg. MMDeploy takes the
#   model's test_cfg (nms_pre, NMS IoU, max_per_img, the R-CNN score_thr)
#   and fills what a head's test_cfg lacks from post_processing below:
#   score_threshold 0 (MMDeploy: 0.05) because MMDetection's RPN keeps
#   every proposal, whatever its score; pre_top_k -1 (MMDeploy: 5000) as
#   MMDetection keeps every box of each level's nms_pre before NMS;
#   max_output_boxes_per_class 1000 (MMDeploy: 200), as many as the RPN's
#   max_per_img proposals: MMDetection caps detections per image only (the
#   R-CNN's max_per_img, which MMDeploy takes), never per class. What
#   remains different: MMDeploy runs one NMS over the proposals of all FPN
#   levels, MMDetection one per level (docs/deployment.md);
# - optimize=False (_base_/onnxruntime_dynamic.py).
_base_ = ['./_base_/onnxruntime_dynamic.py']

onnx_config = dict(
    output_names=['dets', 'labels'],
    dynamic_axes={
        'dets': {0: 'batch', 1: 'num_dets'},
        'labels': {0: 'batch', 1: 'num_dets'},
    })
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.0,
        confidence_threshold=0.005,  # YOLOv3's; unused by R-CNNs
        iou_threshold=0.5,
        max_output_boxes_per_class=1000,
        pre_top_k=-1,
        keep_top_k=100,
        background_label_id=-1))
