"""mmfca.deployment.mask_paste: MMDeploy's backend model pastes the masks
over each box with MMDetection's function, giving the binary masks that
MMDeploy's whole-image pasting and MMDetection's FCNMaskHead give."""
import pytest
import torch

from mmfca.deployment import masks_pasted_per_box, paste_masks_per_box

pytest.importorskip('mmdeploy', reason='mmdeploy 1.3.1 is installed by '
                    'tools/setup_env.sh (pip install --no-deps)')


def detections(num, img_h, img_w, seed=0):
    """Boxes from sub-pixel to larger than the image, some crossing its
    border, and 28x28 mask probabilities."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * torch.tensor([img_w, img_h])
    wh = torch.rand(num, 2, generator=gen) ** 3 * torch.tensor(
        [img_w, img_h]) * 1.2 + 0.5
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], 1)
    masks = torch.rand(num, 28, 28, generator=gen)
    return boxes, masks


def test_per_box_pasting_is_mmdeploys_and_mmdetections():
    from mmdeploy.codebase.mmdet.deploy.object_detection_model import \
        End2EndModel
    from mmengine.config import ConfigDict

    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    img_h, img_w = 97, 131
    boxes, masks = detections(60, img_h, img_w)
    got = paste_masks_per_box(boxes, masks, img_w, img_h)
    assert got.dtype == torch.bool and got.shape == (60, img_h, img_w)
    mmdeploy = End2EndModel.postprocessing_masks(boxes, masks, img_w,
                                                 img_h) >= 0.5
    assert torch.equal(got, mmdeploy)
    # MMDetection's FCNMaskHead (CPU: each mask over its box), from the
    # logits of the same probabilities, one class
    head = FCNMaskHead(num_classes=1)
    logits = torch.logit(masks.double()).float()[:, None]
    mmdet = head._predict_by_feat_single(
        logits, boxes, torch.zeros(60, dtype=torch.long),
        dict(ori_shape=(img_h, img_w), scale_factor=(1., 1.)),
        ConfigDict(mask_thr_binary=0.5), rescale=False)
    assert torch.equal(got, mmdet)
    assert 0 < got.sum() < got.numel()  # masks, not all or nothing
    # numpy in, as MMDeploy may pass it
    assert torch.equal(
        paste_masks_per_box(boxes.numpy(), masks.numpy(), img_w, img_h), got)
    assert paste_masks_per_box(boxes[:0], masks[:0], img_w,
                               img_h).shape == (0, img_h, img_w)


def test_the_backend_model_pastes_per_box_inside_the_block_only():
    from mmdeploy.codebase.mmdet.deploy.object_detection_model import \
        End2EndModel
    original = End2EndModel.postprocessing_masks
    with masks_pasted_per_box():
        assert End2EndModel.postprocessing_masks is paste_masks_per_box
    assert End2EndModel.postprocessing_masks is original
    with pytest.raises(KeyError):
        with masks_pasted_per_box():
            raise KeyError('prediction failed')
    assert End2EndModel.postprocessing_masks is original
