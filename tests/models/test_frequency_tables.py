"""The three frequency orders against the published tables (the FcaNet
paper's release; 32 (u, v) pairs each on the 7x7 grid), entry by entry,
and every named method as a prefix of its table."""
import pytest

from mmfca.models import get_grid_freqs

# u list, then v list, as published
PUBLISHED = {
    'top': ((0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2,
             4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1),
            (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2,
             6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3)),
    'low': ((0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0,
             1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4),
            (0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5,
             4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3)),
    'bot': ((6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5,
             6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2, 5, 5, 3, 6),
            (6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1,
             4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1, 5, 3, 3, 3)),
}


def test_the_published_tables_are_32_distinct_grid_pairs():
    for us, vs in PUBLISHED.values():
        pairs = list(zip(us, vs))
        assert len(us) == len(vs) == len(set(pairs)) == 32
        assert all(0 <= c < 7 for c in us + vs)


@pytest.mark.parametrize('kind', sorted(PUBLISHED))
def test_complete_table_equals_the_published_one(kind):
    us, vs = PUBLISHED[kind]
    got = get_grid_freqs(f'{kind}32')
    assert len(got) == 32
    for rank, (pair, expected) in enumerate(zip(got, zip(us, vs))):
        assert tuple(pair) == expected, f'{kind} rank {rank}'


@pytest.mark.parametrize('kind', sorted(PUBLISHED))
@pytest.mark.parametrize('num', [1, 2, 4, 8, 16])
def test_each_named_method_is_a_prefix(kind, num):
    us, vs = PUBLISHED[kind]
    assert [tuple(p) for p in get_grid_freqs(f'{kind}{num}')] == list(
        zip(us[:num], vs[:num]))
