# Copyright (c) mmfca contributors. All rights reserved.
"""Plot the 7x7 grid of 2D DCT basis images, the frequencies of a selection
method highlighted with their rank.

    python tools/analysis_tools/plot_dct_basis.py --method top16 --out b.png
    python tools/analysis_tools/plot_dct_basis.py --method "[(0,0),(1,2)]"
"""
import argparse
import ast

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from mmfca.models.layers.dct import (FREQ_GRID, dct_filters,  # noqa: E402
                                     get_grid_freqs, scale_freqs)


def parse_method(text):
    """``'top16'`` or a Python literal list of (u, v) pairs."""
    text = text.strip()
    return ast.literal_eval(text) if text.startswith(('[', '(')) else text


def plot_dct_basis(method, out, filter_size=56, cell_inches=1.0, dpi=100):
    """Draw the basis grid; return the selected (u, v) pairs.

    Args:
        method (str | list): Frequency selection (see get_grid_freqs).
        out (str): PNG path.
        filter_size (int): Side of each basis image (56: stage 1's filter).
        cell_inches (float): Size of one grid cell.
        dpi (int): Resolution.

    Returns:
        list[tuple[int, int]]: The highlighted pairs, in rank order.
    """
    grid_freqs = get_grid_freqs(method)
    rank = {f: i + 1 for i, f in enumerate(grid_freqs)}
    grid = [(u, v) for u in range(FREQ_GRID) for v in range(FREQ_GRID)]
    images = dct_filters(filter_size, filter_size,
                         scale_freqs(grid, filter_size, filter_size))
    fig, axes = plt.subplots(
        FREQ_GRID, FREQ_GRID,
        figsize=(FREQ_GRID * cell_inches, FREQ_GRID * cell_inches + 0.4))
    for (u, v), img, ax in zip(grid, images, axes.flat):
        ax.imshow(img.numpy(), cmap='gray', interpolation='nearest')
        ax.set_xticks([])
        ax.set_yticks([])
        if (u, v) in rank:
            for side in ax.spines.values():
                side.set_edgecolor('red')
                side.set_linewidth(3)
            ax.set_title(f'#{rank[(u, v)]}', fontsize=8, color='red',
                         pad=2)
    label = method if isinstance(method, str) else f'{len(grid_freqs)} pairs'
    fig.suptitle(f'2D DCT basis, 7x7 grid (u: rows, v: columns); '
                 f'{label} in red', fontsize=9)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return grid_freqs


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--method', default='top16',
                        help="e.g. top16, low4, or '[(0,0),(1,2)]'")
    parser.add_argument('--out', default='dct_basis.png')
    parser.add_argument('--filter-size', type=int, default=56)
    parser.add_argument('--dpi', type=int, default=100)
    args = parser.parse_args(argv)
    freqs = plot_dct_basis(parse_method(args.method), args.out,
                           args.filter_size, dpi=args.dpi)
    print(f'{args.out}: {len(freqs)} frequencies highlighted: {freqs}')


if __name__ == '__main__':
    main()
