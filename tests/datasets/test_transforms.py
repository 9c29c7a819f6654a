"""OrientationPad: the release's fixed padding of its Faster R-CNN recipe."""
import numpy as np
import pytest
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks

import mmfca  # noqa: F401  (registers OrientationPad)


@pytest.mark.parametrize('h,w,padded', [(800, 1200, (800, 1333)),
                                        (750, 1333, (800, 1333)),
                                        (1333, 700, (1333, 800)),
                                        (800, 800, (800, 1333))])
def test_pads_to_the_orientations_fixed_size(h, w, padded):
    pad = TRANSFORMS.build(dict(type='OrientationPad'))
    img = np.full((h, w, 3), 7, np.uint8)
    masks = BitmapMasks(np.ones((2, h, w), np.uint8), h, w)
    out = pad(dict(img=img, img_shape=(h, w), gt_masks=masks))
    assert out['img'].shape == padded + (3, )
    assert out['pad_shape'][:2] == padded
    assert out['img_shape'] == (h, w)  # boxes are clipped to the image
    assert (out['img'][:h, :w] == 7).all() and (out['img'][h:] == 0).all()
    assert (out['gt_masks'].height, out['gt_masks'].width) == padded
    assert out['gt_masks'].masks[:, :h, :w].all()
    assert not out['gt_masks'].masks[:, h:].any()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"\['size'\]"):
        TRANSFORMS.build(dict(type='OrientationPad', size=(10, 10)))
    with pytest.raises(ValueError, match=r'width >= height'):
        TRANSFORMS.build(dict(type='OrientationPad',
                              landscape_size=(800, 1333)))


def test_release_faster_rcnn_pipeline_gives_fixed_shapes(tmp_path):
    """The shipped Faster R-CNN recipe's test pipeline, with the images
    resized 1333x800 keep-ratio: landscape and portrait images of different
    aspect ratios come out 800x1333 and 1333x800."""
    import os.path as osp

    import mmcv
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope

    from _helpers import REPO
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'det', 'faster-rcnn_fca50_fpn_1x_coco.py'))
    pipeline = [t for t in cfg.test_pipeline if t.type != 'LoadAnnotations']
    with DefaultScope.overwrite_default_scope('mmdet'):
        pipeline = Compose(pipeline)
    for (h, w), expected in (((480, 640), (800, 1333)),
                             ((300, 900), (800, 1333)),
                             ((640, 427), (1333, 800))):
        path = str(tmp_path / f'{h}x{w}.png')
        mmcv.imwrite(np.zeros((h, w, 3), np.uint8), path)
        out = pipeline(dict(img_path=path, img_id=0))
        assert tuple(out['inputs'].shape[1:]) == expected
