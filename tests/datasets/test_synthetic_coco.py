import json

import numpy as np
from pycocotools.coco import COCO

from mmfca.datasets import make_synthetic_coco


def test_deterministic_layout_and_valid_annotations(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    make_synthetic_coco(str(a), num_train=6, num_val=3, seed=3,
                        img_size=(64, 80))
    make_synthetic_coco(str(b), num_train=6, num_val=3, seed=3,
                        img_size=(64, 80))
    for split, n in (('train2017', 6), ('val2017', 3)):
        ann = f'annotations/instances_{split}.json'
        assert (a / ann).read_text() == (b / ann).read_text()
        assert len(list((a / split).glob('*.jpg'))) == n
        assert (a / split / '000000000001.jpg').read_bytes() == \
            (b / split / '000000000001.jpg').read_bytes()
        coco = COCO(str(a / ann))
        assert len(coco.getCatIds()) >= 3
        for img_id in coco.getImgIds():
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert 1 <= len(anns) <= 5
            for ann_ in anns:
                m = coco.annToMask(ann_)
                assert m.shape == (64, 80) and m.sum() == ann_['area']
                ys, xs = np.nonzero(m)
                x, y, w, h = ann_['bbox']
                assert (x, y) == (xs.min(), ys.min())
                assert (w, h) == (xs.max() - x + 1, ys.max() - y + 1)


def test_other_seed_other_data(tmp_path):
    make_synthetic_coco(str(tmp_path / 'a'), 4, 1, seed=0)
    make_synthetic_coco(str(tmp_path / 'b'), 4, 1, seed=1)
    ja = json.loads((tmp_path / 'a/annotations/instances_train2017.json')
                    .read_text())
    jb = json.loads((tmp_path / 'b/annotations/instances_train2017.json')
                    .read_text())
    assert ja['annotations'] != jb['annotations']
