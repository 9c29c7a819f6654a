# Copyright (c) mmfca contributors. All rights reserved.
"""Convert a released FcaNet checkpoint for mmfca.

    # ImageNet (fca34/50/101/152.pth) -> MMPretrain ImageClassifier
    python tools/model_converters/fcanet2mmfca.py fca50.pth \\
        checkpoints/fcanet50_in1k.pth
    # MMDetection 2.x Faster/Mask R-CNN (FreqNet) -> MMDetection 3.x
    python tools/model_converters/fcanet2mmfca.py mask_rcnn_fca50.pth \\
        checkpoints/mask-rcnn_fca50_fpn_1x_coco.pth

The depth and the kind are found from the keys. An existing DST is never
overwritten without --force, and DST is written atomically.
"""
import argparse
import sys

from mmfca.converters import ConversionError, convert_file


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('src', help='released checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--kind', default='auto',
                        choices=['auto', 'imagenet', 'detector'])
    parser.add_argument('--force', action='store_true',
                        help='replace an existing DST')
    parser.add_argument(
        '--trust-source', action='store_true',
        help='fully unpickle SRC (MMDetection 2.x checkpoints may need it); '
        'only for files you trust')
    args = parser.parse_args(argv)
    try:
        meta = convert_file(args.src, args.dst, args.kind, args.force,
                            args.trust_source)
    except (ConversionError, FileExistsError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'converted {meta["arch"]} {meta["kind"]} checkpoint '
          f'{args.src} -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
