"""The FCA layer has two paths on the CPU: its CPU specialisation (the
squeeze's products summed in slices, the fused training function) and the
formula's plain path, which CUDA and every other input take.
``layer_path`` runs a test on each in turn."""
import pytest

from mmfca.models.layers import cpu_specialisations

LAYER_PATHS = ('cpu-specialised', 'plain')


@pytest.fixture(params=LAYER_PATHS)
def layer_path(request):
    """The test runs once per path, with the other switched off."""
    with cpu_specialisations(request.param == 'cpu-specialised'):
        yield request.param
