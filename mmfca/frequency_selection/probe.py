# Copyright (c) mmfca contributors. All rights reserved.
"""The third fitting mode, no training at all: each of the 49 cells ranked
by how much its squeeze of the model's features, as built, reads of the
labels.

For every FCA layer, every channel ``c`` and every cell ``k``, the reading
is the cell's DCT term of the layer's input, ``r[n, k, c] = sum_ij x[n, c,
i, j] * B_k(i, j)`` (what a single-frequency network with cell ``k`` would
squeeze there). Over ``N`` training images, a cell's score is the squared
correlation of its readings with each class's presence (one class against
the rest; the correlation ratio ``eta^2``, between-group over total sum of
squares), averaged over the classes seen present and absent at least twice,
the channels and the FCA layers:

    score_k = mean over layers, classes m, channels c of
              corr(r[:, k, c], [m present in image n])^2

A class is present in an image when it is the image's label
(classification), one of its boxes' labels (detection) or one of its
pixels' labels (segmentation, ``ignore_index`` 255 left out). The features
are those of the model as the config builds it: its initialisation (and
``load_from``, if set), BN layers on batch statistics.
"""
import torch

from .cells import GRID_CELLS, cell_filters, fca_layers

#: The name of the score :class:`CellReadingProbe` ranks by.
PROBE_METRIC = 'probe/eta2'

#: The label segmentation maps leave out (MMSegmentation's ignore_index).
IGNORE_INDEX = 255


def present_classes(data_sample):
    """The classes present in one image, a 1D integer tensor: the image's
    ``gt_label`` (MMPretrain), its boxes' ``gt_instances.labels``
    (MMDetection) or its pixels' ``gt_sem_seg`` labels (MMSegmentation,
    255 left out)."""
    if 'gt_label' in data_sample:
        return data_sample.gt_label.reshape(-1).long()
    if 'gt_instances' in data_sample:
        return data_sample.gt_instances.labels.reshape(-1).long().unique()
    if 'gt_sem_seg' in data_sample:
        labels = data_sample.gt_sem_seg.data.reshape(-1).long().unique()
        return labels[labels != IGNORE_INDEX]
    raise ValueError(f'{type(data_sample).__name__} has no labels the '
                     'probe knows (gt_label, gt_instances.labels, '
                     'gt_sem_seg).')


class CellReadingProbe:
    """Accumulate the statistics of the score above while the model runs
    (a forward pre-hook on every FCA layer's squeeze), then
    :meth:`scores`. Memory: ``8 * (num_classes + 3) * 49 * C`` bytes per
    layer of C channels; a class needs to be seen present at least twice
    (with ImageNet's 1000 classes, some thousands of images).

    Args:
        model (nn.Module): A model with FCA layers.
        num_classes (int): The number of classes of the labels.

    Usage::

        probe = CellReadingProbe(model, num_classes)
        for inputs, samples in batches:
            probe.update([present_classes(s) for s in samples])
            model.backbone(inputs)
        scores = probe.scores()
        probe.remove()
    """

    def __init__(self, model, num_classes):
        layers = fca_layers(model, 'to probe')
        self.num_classes = num_classes
        self.count = 0  # images seen
        self.present = torch.zeros(num_classes, dtype=torch.float64)
        # the batch whose forward pass comes next (set by update): its
        # size, its (image, class) pairs, the layers yet to read it
        self.batch = None
        # per layer: the readings less a shift (the first batch's mean, so
        # the sums of squares do not cancel), their sum and sum of squares
        # (49, C), and their sum over the images where each class is
        # present (K, 49, C)
        self.stats = [None] * len(layers)
        self.handles = [layer.dct_layer.register_forward_pre_hook(
            self._hook(i)) for i, layer in enumerate(layers)]

    def _hook(self, index):

        def hook(squeeze, args):
            x = args[0].detach()
            batch = self.batch
            if batch is None or batch['size'] != len(x) or \
                    index not in batch['unread']:
                raise ValueError(
                    f'{type(self).__name__} needs the labels of the '
                    f'{len(x)} images of each batch before its forward '
                    'pass (update).')
            batch['unread'].discard(index)
            readings = torch.einsum(
                'nchw,khw->nkc', x.double(),
                cell_filters(squeeze, x, torch.float64))
            stats = self.stats[index]
            if stats is None:
                zeros = readings.new_zeros(readings.shape[1:])
                stats = self.stats[index] = dict(
                    shift=readings.mean(0), sum=zeros, square=zeros.clone(),
                    by_class=zeros.new_zeros((self.num_classes, ) +
                                             zeros.shape))
            readings -= stats['shift']
            stats['sum'] += readings.sum(0)
            stats['square'] += readings.square().sum(0)
            images, classes = (t.to(x.device) for t in batch['pairs'])
            stats['by_class'].index_add_(0, classes, readings[images])

        return hook

    def update(self, labels):
        """Give the classes present in each image of the batch whose
        forward pass comes next (a list of 1D integer tensors, as
        :func:`present_classes` returns them), and count them."""
        images, classes = [], []
        for n, present in enumerate(labels):
            present = present.cpu().long().unique()
            bad = present[(present < 0) | (present >= self.num_classes)]
            if len(bad):
                raise ValueError(f'Label {int(bad[0])} is not a class in '
                                 f'[0, {self.num_classes}).')
            images += [n] * len(present)
            classes += present.tolist()
        self.batch = dict(size=len(labels), unread=set(range(len(
            self.stats))), pairs=(torch.tensor(images, dtype=torch.long),
                                  torch.tensor(classes, dtype=torch.long)))
        self.count += len(labels)
        self.present += torch.bincount(
            self.batch['pairs'][1], minlength=self.num_classes).double()

    def scores(self):
        """``{(u, v): score}``, higher is better (see the module).

        Raises:
            ValueError: If no class was seen both present and absent at
                least twice, or a layer never ran.
        """
        n = self.count
        valid = (self.present >= 2) & (n - self.present >= 2)
        if not bool(valid.any()):
            raise ValueError(
                f'No class was present in at least 2 and absent from at '
                f'least 2 of the {n} probed images; probe more images.')
        if any(stats is None for stats in self.stats):
            raise ValueError('An FCA layer never ran; the probe reads the '
                             'backbone.')
        per_layer = []
        for stats in self.stats:  # shifted readings: the sums cancel less
            mean = stats['sum'] / n
            total = stats['square'] - n * mean.square()  # (49, C)
            n1 = self.present[valid].to(mean.device)[:, None, None]
            mean1 = stats['by_class'][valid.to(mean.device)] / n1
            mean0 = (stats['sum'] - n1 * mean1) / (n - n1)
            between = n1 * (mean1 - mean).square() + (n - n1) * (
                mean0 - mean).square()
            # a channel that does not vary (beyond rounding) reads nothing
            varies = total > 1e-12 * stats['square']
            eta2 = torch.where(varies, between / total.clamp_min(1e-300),
                               torch.zeros_like(between)).clamp(0, 1)
            per_layer.append(eta2.mean((0, 2)))  # over classes, channels
        score = torch.stack(per_layer).mean(0)
        return {cell: float(s) for cell, s in zip(GRID_CELLS, score)}

    def remove(self):
        """Remove the hooks."""
        for handle in self.handles:
            handle.remove()
