# Copyright (c) mmfca contributors. All rights reserved.
"""Choosing FcaNet's frequencies on one's own data.

* :mod:`.ranking`: records, ranking, heatmap and config snippet shared by
  ``tools/analysis_tools/frequency_ablation.py`` (one training per cell)
  and ``tools/analysis_tools/fit_frequencies.py`` (no training or one);
* the three methods of the latter: :mod:`.probe` (the default, no
  training: each cell's reading of the labels in the model as built,
  :class:`CellReadingProbe`), :mod:`.sampling` (a weight-shared
  single-frequency network, :class:`CellSamplingSqueeze`,
  :class:`CellSamplingHook`) and :mod:`.selection` (Gumbel-softmax
  selection logits per FCA layer, :class:`CellSelectionSqueeze`,
  :class:`CellSelectionHook`);
* :mod:`.cells`: what they share, the 49 cells and their filters.
"""
from .cells import GRID_CELLS
from .probe import PROBE_METRIC, CellReadingProbe, present_classes
from .ranking import (DEFAULT_METRICS, cell_path, duration, read_records,
                      validate_after_training, write_heatmap, write_record,
                      write_snippet)
from .sampling import (CellSamplingHook, CellSamplingSqueeze, set_cell,
                       use_cell_sampling)
from .selection import (SELECTION_METRIC, CellSelectionHook,
                        CellSelectionSqueeze, selection_scores,
                        set_temperature)

__all__ = [
    'DEFAULT_METRICS', 'cell_path', 'duration', 'read_records',
    'validate_after_training',
    'write_heatmap', 'write_record', 'write_snippet', 'CellSamplingHook',
    'CellSamplingSqueeze', 'GRID_CELLS', 'set_cell', 'use_cell_sampling',
    'SELECTION_METRIC', 'CellSelectionHook', 'CellSelectionSqueeze',
    'selection_scores', 'set_temperature', 'PROBE_METRIC',
    'CellReadingProbe', 'present_classes'
]
