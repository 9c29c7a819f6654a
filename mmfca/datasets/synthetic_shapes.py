# Copyright (c) mmfca contributors. All rights reserved.
"""Random coloured shapes: the drawing behind every synthetic data set."""
import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('rectangle', 'ellipse', 'triangle')
# A base colour per class (jittered per instance) keeps the demo learnable
# in minutes on a CPU; the shape is still what the masks must follow.
_BASE_COLOURS = ((220, 60, 50), (50, 180, 70), (60, 90, 220))


def _draw_shape(draw, kind, box, rng, outline=False):
    x0, y0, x1, y1 = box
    style = dict(fill=None, outline=1, width=3) if outline else dict(fill=1)
    if kind == 'rectangle':
        draw.rectangle(box, **style)
    elif kind == 'ellipse':
        draw.ellipse(box, **style)
    else:
        apex = rng.uniform(x0, x1)
        draw.polygon([(apex, y0), (x0, y1), (x1, y1)], **style)


def draw_shapes_image(rng, height, width, max_instances, outline=False,
                      min_instances=1):
    """Draw an image of 1..``max_instances`` random shapes.

    Args:
        rng (numpy.random.Generator): The random source.
        height (int): Image height.
        width (int): Image width.
        max_instances (int): At most this many shapes.
        outline (bool): Draw outlines instead of filled shapes.
        min_instances (int): At least this many shapes. Defaults to 1.

    Returns:
        tuple: ``(image uint8 HxWx3 RGB, owner int32 HxW, labels, areas)``:
        ``owner`` holds, per pixel, the index of the visible shape (-1 for
        background); ``labels[k]`` is shape ``k``'s index into
        :data:`CLASSES` and ``areas[k]`` its whole area in pixels, occluded
        parts included (``(owner == k).sum() / areas[k]`` is the fraction
        of it that shows).
    """
    img = np.empty((height, width, 3), dtype=np.float32)
    img[:] = rng.uniform(150, 250, size=3)
    img += rng.normal(0, 8, size=img.shape)
    owner = np.full((height, width), -1, dtype=np.int32)
    labels, areas = [], []
    for k in range(int(rng.integers(min_instances, max_instances + 1))):
        label = int(rng.integers(len(CLASSES)))
        side = min(height, width)
        w = rng.uniform(0.2, 0.5) * side
        h = w * rng.uniform(0.7, 1.4)
        x0 = rng.uniform(0, width - w)
        y0 = rng.uniform(0, max(height - h, 1))
        canvas = Image.new('L', (width, height), 0)
        _draw_shape(ImageDraw.Draw(canvas), CLASSES[label],
                    (x0, y0, x0 + w, y0 + h), rng, outline)
        shape = np.asarray(canvas, dtype=bool)
        colour = np.clip(np.array(_BASE_COLOURS[label]) +
                         rng.normal(0, 20, size=3), 0, 255)
        img[shape] = colour + rng.normal(0, 6, size=(shape.sum(), 3))
        owner[shape] = k
        labels.append(label)
        areas.append(int(shape.sum()))
    return np.clip(img, 0, 255).astype(np.uint8), owner, labels, areas
