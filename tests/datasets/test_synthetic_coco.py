import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from mmfca.datasets import make_synthetic_coco
from mmfca.datasets.synthetic_coco import make_split
from mmfca.datasets.synthetic_shapes import draw_shapes_image


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


def test_shape_areas_include_the_occluded_parts():
    rng = np.random.default_rng(0)
    for _ in range(20):  # one shape: nothing hides it
        _, owner, labels, areas = draw_shapes_image(rng, 64, 64, 1)
        assert len(labels) == len(areas) == 1
        assert areas[0] == (owner == 0).sum() > 0
    hidden = 0
    for _ in range(20):
        _, owner, labels, areas = draw_shapes_image(rng, 64, 64, 5,
                                                    min_instances=5)
        visible = [(owner == k).sum() for k in range(5)]
        assert all(v <= a for v, a in zip(visible, areas))
        assert visible[-1] == areas[-1]  # the last one drawn is on top
        hidden += sum(v < a for v, a in zip(visible, areas))
    assert hidden > 0


def _visible_fractions(seed, num_images, size):
    """Replay the generator: ``{(image id, visible area): fraction}``."""
    rng = np.random.default_rng(seed)
    fractions = {}
    for img_id in range(1, num_images + 1):
        _, owner, _, areas = draw_shapes_image(rng, size, size, 5)
        for k, area in enumerate(areas):
            visible = int((owner == k).sum())
            fractions[img_id, visible] = visible / area
    return fractions


def test_heavily_occluded_instances_become_crowd(tmp_path):
    plain = make_split(str(tmp_path / 'a'), 'val2017', 30, 5, (96, 96))
    marked = make_split(str(tmp_path / 'b'), 'val2017', 30, 5, (96, 96),
                        ignore_visible_below=0.3)
    # the same images and instances; only the crowd flags differ
    assert (tmp_path / 'a/val2017/000000000007.jpg').read_bytes() == \
        (tmp_path / 'b/val2017/000000000007.jpg').read_bytes()
    assert [dict(a, iscrowd=0) for a in marked['annotations']] == \
        plain['annotations']
    assert not any(a['iscrowd'] for a in plain['annotations'])
    fractions = _visible_fractions(5, 30, 96)
    crowd = [a['iscrowd'] for a in marked['annotations']]
    expected = [int(fractions[a['image_id'], a['area']] < 0.3)
                for a in marked['annotations']]
    assert crowd == expected and 0 < sum(crowd) < len(crowd)
    assert marked['info']['mmfca']['ignore_visible_below'] == 0.3


def test_coco_evaluation_ignores_the_crowd_instances(tmp_path):
    from pycocotools.cocoeval import COCOeval
    make_synthetic_coco(str(tmp_path), 2, 30, seed=4, img_size=(96, 96),
                        ignore_visible_below=0.3)
    gt = COCO(str(tmp_path / 'annotations/instances_val2017.json'))
    # a detector that finds exactly the instances that are not crowd
    found = [dict(image_id=a['image_id'], category_id=a['category_id'],
                  bbox=a['bbox'], score=1.0)
             for a in gt.dataset['annotations'] if not a['iscrowd']]
    assert len(found) < len(gt.dataset['annotations'])

    def box_ap(coco_gt):
        ev = COCOeval(coco_gt, coco_gt.loadRes(found), 'bbox')
        for step in (ev.evaluate, ev.accumulate):
            step()
        with contextlib.redirect_stdout(io.StringIO()):
            ev.summarize()
        return ev.stats[0]

    assert box_ap(gt) == pytest.approx(1.0)
    # the same detections against every instance counted: misses
    for a in gt.dataset['annotations']:
        a['iscrowd'] = 0
    gt.createIndex()
    assert box_ap(gt) < 0.99


def test_mmdet_trains_on_the_visible_instances_only(tmp_path):
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    make_synthetic_coco(str(tmp_path), 12, 1, seed=2, img_size=(96, 96),
                        ignore_visible_below=0.3)

    def current_scope():  # mmengine restores a copy: compare the names
        scope = DefaultScope.get_current_instance()
        return scope and (scope.instance_name, scope.scope_name)

    before = current_scope()
    with DefaultScope.overwrite_default_scope('mmdet'):
        packed = _packed_coco_samples(tmp_path)
    # no global scope left behind for later tests (it broke one once)
    assert current_scope() == before
    coco = json.loads((tmp_path / 'annotations/instances_train2017.json')
                      .read_text())['annotations']
    trained = sum(len(p.gt_instances) for p in packed)
    ignored = sum(len(p.ignored_instances) for p in packed)
    assert ignored == sum(a['iscrowd'] for a in coco) > 0
    assert trained == len(coco) - ignored


def _packed_coco_samples(root):
    """MMDetection's CocoDataset on ``root``'s train split, as packed for
    training: the data samples."""
    from mmdet.datasets import CocoDataset
    ds = CocoDataset(
        data_root=str(root),
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        metainfo=dict(classes=('rectangle', 'ellipse', 'triangle')),
        filter_cfg=None,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True,
                       with_mask=True),
                  dict(type='PackDetInputs')])
    return [ds[i]['data_samples'] for i in range(len(ds))]


@pytest.mark.parametrize('bad', [-0.1, 1.0, 2])
def test_bad_ignore_fraction_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match=r'ignore_visible_below.*\[0, 1\)'):
        make_synthetic_coco(str(tmp_path), 1, 1,
                            ignore_visible_below=bad)
    assert not (tmp_path / 'annotations').exists()
