# Copyright (c) mmfca contributors. All rights reserved.
"""The release's fixed-size padding for its Faster R-CNN COCO recipe."""
from mmdet.datasets.transforms import Pad
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class OrientationPad(Pad):
    """Pad to a fixed size that follows the image's orientation, as the
    FcaNet release's Faster R-CNN configs do (their patched ``Pad``):
    ``landscape_size`` (width, height) for images at least as wide as high,
    its transpose for the others. With 1333x800 keep-ratio resizing every
    image then has the same shape per orientation, which is what the FCA
    layers' adaptive pooling saw in training and test.

    ``img_shape`` keeps the unpadded size (MMDetection 2.x semantics, which
    the release ran on: boxes are clipped to the image, not the padding);
    ``pad_shape`` is the padded one.

    Args:
        landscape_size (tuple[int, int]): (width, height) for landscape
            images. Defaults to (1333, 800).
        **kwargs: Other arguments of :class:`mmdet.datasets.transforms.Pad`
            (``pad_val``, ``padding_mode``), not ``size`` or
            ``size_divisor``.
    """

    def __init__(self, landscape_size=(1333, 800), **kwargs):
        if 'size' in kwargs or 'size_divisor' in kwargs:
            raise ValueError(
                f'OrientationPad sets the size from landscape_size; got '
                f'{sorted(k for k in kwargs if k.startswith("size"))}.')
        width, height = landscape_size
        if width < height:
            raise ValueError(f'landscape_size={landscape_size} is (width, '
                             f'height) of a landscape image: width >= height.')
        self.landscape_size = (width, height)
        super().__init__(size=self.landscape_size, **kwargs)

    def transform(self, results: dict) -> dict:
        """Pad ``img`` (and masks, seg maps) to the orientation's size."""
        h, w = results['img'].shape[:2]
        self.size = self.landscape_size if w >= h else \
            self.landscape_size[::-1]
        img_shape = results['img_shape']
        results = super().transform(results)
        results['img_shape'] = img_shape
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(landscape_size='
                f'{self.landscape_size}, pad_val={self.pad_val}, '
                f'padding_mode={self.padding_mode})')
