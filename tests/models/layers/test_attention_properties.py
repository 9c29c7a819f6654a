"""Property-based checks of the FCA layer against a float64 reference over
random shapes, methods and filter sizes."""
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmfca.testing import reference_fca
from mmfca.models import MultiSpectralAttention
NUM_FREQS = (1, 2, 4, 8, 16, 32)

METHODS = st.builds(lambda kind, n: f'{kind}{n}',
                    st.sampled_from(['top', 'low', 'bot']),
                    st.sampled_from(NUM_FREQS))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(method=METHODS, groups_mult=st.integers(1, 3), extra=st.integers(0, 31),
       dct=st.sampled_from([7, 8, 14, 21]), h=st.integers(1, 40),
       w=st.integers(1, 40), batch=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_layer_matches_float64_reference(method, groups_mult, extra, dct, h,
                                         w, batch, seed):
    torch.manual_seed(seed)
    n = int(method[3:])
    # any channel count: equal groups and uneven ones
    channels = n * groups_mult + extra % n
    layer = MultiSpectralAttention(channels, dct, dct, reduction=1,
                                   freq_sel_method=method)
    for fc in (layer.fc[0], layer.fc[2]):
        torch.nn.init.normal_(fc.weight, std=0.5)
    x = torch.randn(batch, channels, h, w)
    out = layer(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out.double(), reference_fca(layer, x),
                               rtol=1e-5, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(1e2, 3e4), h=st.integers(7, 64), w=st.integers(7, 64),
       method=METHODS)
def test_large_inputs_finite_under_bf16_autocast(scale, h, w, method):
    n = int(method[3:])
    layer = MultiSpectralAttention(2 * n, 7, 7, 1, method)
    x = torch.randn(1, 2 * n, h, w) * scale
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x.bfloat16())
    assert torch.isfinite(out).all()
