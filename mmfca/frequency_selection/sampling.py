# Copyright (c) mmfca contributors. All rights reserved.
"""The fitting mode: one training of a weight-shared single-frequency
network, after which each of the 49 cells of the 7x7 grid is evaluated
with the shared weights.

The paper ranks the cells by training one network per cell, every channel
group of every FCA layer using that cell. Here each training image draws a
cell uniformly at random and every FCA layer squeezes that image with it
(the same network family, one set of weights for all 49, except each
cell's own channel-wise scale of the squeeze: the sign and size of what a
cell reads are its own); afterwards the cells are ranked by evaluating the
trained weights with one cell at a time (the tool re-estimates the BN
statistics of each cell's network first, as one-shot supernets do).
The choice ends hard: a ranked list of cells, trained again with fixed DCT
filters (``freq_sel_method=<pairs[:16]>``), not a learned mixture.

:func:`use_cell_sampling` swaps each FCA layer's squeeze for a
:class:`CellSamplingSqueeze` (same arguments, the published state-dict
keys plus ``cell_scale``; with no cell set it is the published squeeze),
:class:`CellSamplingHook` draws the cells of each training batch,
:func:`set_cell` fixes one cell for evaluation.
"""
import torch
from mmengine.hooks import Hook
from torch import nn

from mmfca.models.layers.dct import FREQ_GRID, get_grid_freqs
from mmfca.models.layers.dct_squeeze import MultiSpectralSqueeze
from .cells import GRID_CELLS, cell_filters, fca_layers, set_all

#: How :class:`CellSamplingHook` draws cells: one per image, or one per
#: batch.
SAMPLING_MODES = ('image', 'batch')


class CellSamplingSqueeze(MultiSpectralSqueeze):
    """FCA's squeeze with a fitting mode: while :attr:`cells` is set, every
    channel of an image is squeezed with one cell of the 7x7 grid, as in a
    single-frequency network (``freq_sel_method=[(u, v)]``); with
    :attr:`cells` None (the default) it is :class:`MultiSpectralSqueeze`
    with the same arguments: same ``weight`` buffer (state-dict keys and
    values), same outputs; :attr:`cell_scale` (49, C), ones at first, is
    each cell's own channel-wise scale of the squeeze, used only while
    cells are set.

    :attr:`cells`: None, a cell index ``u * 7 + v`` for the whole batch,
    or a (N,) integer tensor of one index per image (set by
    :class:`CellSamplingHook` and :func:`set_cell`).

    Args:
        in_channels (int): Number of input channels.
        dct_h (int, optional): Filter height, as
            :class:`MultiSpectralSqueeze`'s. Defaults to 7.
        dct_w (int, optional): Filter width. Defaults to 7.
        freq_sel_method (str | list): The frequencies used while no cell is
            set. Defaults to ``'top16'``.
        normalization (str): ``'ortho'`` or ``'mean'``. Defaults to
            ``'ortho'``.
        keepdim (bool): Return (N, C, 1, 1) instead of (N, C). Defaults to
            False.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cells = None
        # each cell's own channel-wise scale of the squeeze, used only with
        # cells set: the 49 single-cell networks share every weight but
        # this one (the sign and size of a cell's reading are its own, as
        # a one-shot supernet keeps each candidate's own normalisation)
        self.cell_scale = nn.Parameter(
            torch.ones(len(GRID_CELLS), self.in_channels))

    @classmethod
    def from_squeeze(cls, squeeze):
        """The fitting counterpart of a :class:`MultiSpectralSqueeze`, on
        its device."""
        new = cls(squeeze.in_channels, squeeze.dct_h, squeeze.dct_w,
                  list(squeeze.grid_freqs), squeeze.normalization,
                  squeeze.keepdim)
        weight = getattr(squeeze, 'weight', None)
        return new if weight is None else new.to(weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The published squeeze without cells; else ``y[n, c] = sum_ij
        x[n, c, i, j] * B[cell_n](i, j) * cell_scale[cell_n, c]`` (the
        cell's DCT filter at this layer's size, pooling folded in, and the
        cell's own scale), float32 (float64 for float64)."""
        if self.cells is None:
            return super().forward(x)
        n, c, h, w = self.check_input(x)
        bank = cell_filters(self, x)
        cells = self.cells
        if torch.is_tensor(cells):
            if cells.shape != (n, ):
                raise ValueError(
                    f'{type(self).__name__} has cells for '
                    f'{tuple(cells.shape)} images, got a batch of {n}.')
            filters = bank[cells][:, None]  # (N, 1, H, W)
        else:
            filters = bank[cells]  # (H, W)
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        y = (x * filters).sum((2, 3), dtype=acc) * self.cell_scale[cells]
        return y.view(n, c, 1, 1) if self.keepdim else y

    def extra_repr(self):
        return f'{super().extra_repr()}, cells={self.cells!r}'


def _cell_index(cell):
    """A cell as its index ``u * 7 + v``: from a (u, v) pair (checked as
    ``freq_sel_method`` pairs are) or an integer index."""
    if isinstance(cell, (tuple, list)):
        (u, v), = get_grid_freqs([cell])
        return u * FREQ_GRID + v
    if type(cell) is not int or not 0 <= cell < len(GRID_CELLS):
        raise ValueError(f'Cell {cell!r} is neither a (u, v) pair of the '
                         f'7x7 grid nor an integer index in [0, '
                         f'{len(GRID_CELLS)}).')
    return cell


def set_cell(model, cell):
    """Set the cells of every :class:`CellSamplingSqueeze` in ``model``.

    Args:
        model (nn.Module): A model after :func:`use_cell_sampling`.
        cell: None (the published squeeze), a (u, v) pair or an index
            ``u * 7 + v`` for the whole batch, or a (N,) integer tensor of
            one index per image.

    Returns:
        int: The number of squeezes set.
    """
    if torch.is_tensor(cell):  # moved to the model's device once
        if cell.is_floating_point() or cell.dtype == torch.bool or (
                (cell < 0) | (cell >= len(GRID_CELLS))).any():
            raise ValueError(f'Cells {cell!r} are not integer indices in '
                             f'[0, {len(GRID_CELLS)}).')
        cell = cell.to(next(model.parameters(), cell).device)
    elif cell is not None:
        cell = _cell_index(cell)
    return set_all(model, CellSamplingSqueeze, 'cells', cell)


def use_cell_sampling(model, squeeze_type=None):
    """Swap the squeeze (``dct_layer``) of every FCA layer of ``model`` for
    its :class:`CellSamplingSqueeze` (in place).

    Args:
        model (nn.Module): The model, e.g. a runner's.
        squeeze_type (type, optional): A subclass of
            :class:`CellSamplingSqueeze` to swap in instead (e.g.
            :class:`~mmfca.frequency_selection.CellSelectionSqueeze`).

    Returns:
        int: The number of FCA layers.

    Raises:
        ValueError: If ``model`` has no FCA layer, or one whose filters are
            not the fixed DCT (``learnable_filter``/``filter_init``): the
            fitting mode ranks DCT cells.
    """
    layers = fca_layers(model, 'whose frequencies could be fitted')
    squeeze_type = squeeze_type or CellSamplingSqueeze
    for layer in layers:
        squeeze = layer.dct_layer
        if type(squeeze) is squeeze_type:
            continue
        if isinstance(squeeze, CellSamplingSqueeze):
            raise ValueError(
                f'An FCA layer already has a {type(squeeze).__name__}; '
                f'one fitting mode per model, not {squeeze_type.__name__} '
                'too.')
        if type(squeeze) is not MultiSpectralSqueeze:
            raise ValueError(
                f'An FCA layer has a {type(squeeze).__name__} squeeze; '
                'fitting ranks fixed DCT cells: set learnable_filter=False '
                "and filter_init='dct'.")
        layer.dct_layer = squeeze_type.from_squeeze(squeeze)
    return len(layers)


class CellSamplingHook(Hook):
    """Draw the cells of each training batch for the model's
    :class:`CellSamplingSqueeze` modules, uniformly from the 49, from a
    generator of its own (the draw is the same for the same seed, whatever
    else consumes random numbers); the cells are cleared after each
    iteration.

    Args:
        seed (int): Seed of the draw. Defaults to 0.
        mode (str): ``'image'`` (a cell per image) or ``'batch'`` (one cell
            for the whole batch). Defaults to ``'image'``.
    """
    priority = 'NORMAL'

    def __init__(self, seed=0, mode='image'):
        if mode not in SAMPLING_MODES:
            raise ValueError(f'Unknown sampling mode {mode!r}; allowed: '
                             f'{SAMPLING_MODES}.')
        self.mode = mode
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self, num_images):
        """The cells of a batch: (N,) indices (``'image'``) or one index."""
        size = (num_images if self.mode == 'image' else 1, )
        cells = torch.randint(len(GRID_CELLS), size, generator=self.generator)
        return cells if self.mode == 'image' else int(cells)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        set_cell(runner.model, self.draw(len(data_batch['inputs'])))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        set_cell(runner.model, None)
