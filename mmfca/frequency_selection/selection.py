# Copyright (c) mmfca contributors. All rights reserved.
"""The second fitting mode: the 49 cells of the 7x7 grid ranked by learnt
selection logits, Gumbel-softmax with a hard choice, in one training and
no evaluation per cell.

Each FCA layer keeps a logit per cell, ``alpha`` (49,). In training every
image draws one cell per layer from ``softmax((alpha + g) / tau)`` (``g``
Gumbel noise): the forward pass squeezes with the drawn cell alone, as
:class:`~mmfca.frequency_selection.CellSamplingSqueeze` does, while the
gradient reaches ``alpha`` through the soft probabilities (the
straight-through estimator of ``F.gumbel_softmax(hard=True)``). The
temperature ``tau`` falls from ``start`` to ``end`` over the training
(:class:`CellSelectionHook`), so draws concentrate on the cells the loss
favours. Afterwards a cell's score is its log-probability averaged over
the layers (:func:`selection_scores`), and the ranked list is trained again
with fixed DCT filters, as in the sampling mode.
"""
import math

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from torch import nn

from .cells import GRID_CELLS, cell_filters, set_all
from .sampling import CellSamplingSqueeze

#: The name of the score :func:`selection_scores` ranks by.
SELECTION_METRIC = 'selection/log_prob'


class CellSelectionSqueeze(CellSamplingSqueeze):
    """:class:`CellSamplingSqueeze` with selection logits: while
    :attr:`temperature` is set, each image is squeezed with one cell drawn
    by Gumbel-softmax from :attr:`logits` (hard forward, soft gradient);
    otherwise it is the sampling squeeze (a set cell, or the published
    squeeze). While selecting, each cell's reading is divided by its root
    mean square over the batch, so the cells compete on what they read,
    not on its size. :attr:`logits` (49,), zeros at first (every cell
    equally likely), is the one parameter it adds to
    :class:`CellSamplingSqueeze`'s.

    Args: those of :class:`CellSamplingSqueeze`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.temperature = None
        self.logits = nn.Parameter(torch.zeros(len(GRID_CELLS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """With :attr:`temperature` set: ``y[n, c] = sum_k w[n, k] *
        cell_scale[k, c] * r[n, k, c] / rms_k``, ``r[n, k, c] = sum_ij
        x[n, c, i, j] * B_k(i, j)`` cell ``k``'s reading, ``rms_k`` its root
        mean square over the batch and channels (a constant to autograd),
        ``w[n]`` a one-hot Gumbel-softmax draw over the 49 cells (its
        gradient the soft draw's); float32 (float64 for float64)."""
        if self.temperature is None:
            return super().forward(x)
        n, c, h, w = self.check_input(x)
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        with torch.autocast(x.device.type, enabled=False):  # all in acc
            # every cell's reading: the soft draw's gradient needs them all
            readings = torch.einsum('nchw,khw->nkc', x.to(acc),
                                    cell_filters(self, x, acc))
            # each cell's reading at the same size (its root mean square
            # over the batch, not differentiated): the logits' gradient is
            # the size of a reading times its use, and the size alone would
            # rank (0, 0), the mean, first
            readings = readings / readings.detach().square().mean(
                (0, 2), keepdim=True).sqrt().clamp_min(1e-6)
            draw = F.gumbel_softmax(self.logits.to(acc).expand(n, -1),
                                    tau=self.temperature, hard=True)
            y = torch.einsum('nk,nkc->nc', draw,
                             readings * self.cell_scale.to(acc))
        return y.view(n, c, 1, 1) if self.keepdim else y

    def extra_repr(self):
        return f'{super().extra_repr()}, temperature={self.temperature!r}'


def set_temperature(model, temperature):
    """Set the temperature of every :class:`CellSelectionSqueeze` in
    ``model`` (None: selection off). Returns how many were set."""
    return set_all(model, CellSelectionSqueeze, 'temperature', temperature)


def selection_scores(model):
    """``{(u, v): score}``: each cell's log-probability under the selection
    logits, averaged over the model's :class:`CellSelectionSqueeze` layers
    (higher is better).

    Raises:
        ValueError: If ``model`` has none.
    """
    logits = [m.logits.detach().double() for m in model.modules()
              if isinstance(m, CellSelectionSqueeze)]
    if not logits:
        raise ValueError(f'{type(model).__name__} has no '
                         'CellSelectionSqueeze; call use_cell_sampling('
                         'model, CellSelectionSqueeze) before training.')
    score = torch.stack([F.log_softmax(a, 0) for a in logits]).mean(0)
    return {cell: float(s) for cell, s in zip(GRID_CELLS, score)}


class CellSelectionHook(Hook):
    """Anneal the selection temperature of the model's
    :class:`CellSelectionSqueeze` modules geometrically from ``start`` (the
    first training iteration) to ``end`` (the last); selection is off
    outside training iterations.

    Args:
        start (float): First temperature. Defaults to 5.0.
        end (float): Last temperature. Defaults to 0.5.
    """
    priority = 'NORMAL'

    def __init__(self, start=5.0, end=0.5):
        for name, value in (('start', start), ('end', end)):
            if not (isinstance(value, (int, float)) and value > 0
                    and math.isfinite(value)):
                raise ValueError(f'Temperature {name}={value!r} is not a '
                                 'positive number.')
        self.start, self.end = float(start), float(end)

    def temperature(self, step, steps):
        """The temperature at iteration ``step`` of ``steps``."""
        progress = step / max(1, steps - 1)
        return self.start * (self.end / self.start)**progress

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        set_temperature(runner.model,
                        self.temperature(runner.iter, runner.max_iters))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        set_temperature(runner.model, None)
