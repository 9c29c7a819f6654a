# Copyright (c) mmfca contributors. All rights reserved.
"""Look inside the FCA layers for one image: per stage, the channel
attention weights and each frequency group's DCT response.

    python tools/analysis_tools/visualize_attention.py CONFIG CHECKPOINT \\
        IMAGE [--out attention.png] [--size 224]

The image is resized to ``--size`` (short side), normalised with the
model's data preprocessor and run through the backbone; the last block of
every stage is shown. The checkpoint loads without running code from it:
tensors, plain data and the training state of mmengine's checkpoints (so
a tools/train.py or ``make demo`` checkpoint works as it is); one inside
``--work-dir`` (your own run's) is fully unpickled.
"""
import argparse

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import mmcv  # noqa: E402
import torch  # noqa: E402

from mmfca.apis import init_model  # noqa: E402
from mmfca.models import MultiSpectralAttention  # noqa: E402


def capture(model, image, size):
    """Run the backbone on ``image``; per stage, the last FCA's attention
    weights (C,) and squeeze output (C,), with its frequencies."""
    img = mmcv.imread(image)  # BGR, as the libraries' pipelines load it
    img = mmcv.imrescale(img, size / min(img.shape[:2]))
    x = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(img).permute(2, 0, 1)]),
        False)['inputs']
    records, handles = {}, []
    for name, module in model.backbone.named_modules():
        if isinstance(module, MultiSpectralAttention):
            rec = records[name] = dict(freqs=module.dct_layer.freqs)
            handles.append(module.dct_layer.register_forward_hook(
                lambda m, i, o, rec=rec, att=module: rec.update(
                    response=o[0], att=att.excite(o)[0])))
    with torch.no_grad():
        model.backbone(x)
    for handle in handles:
        handle.remove()
    last = {}
    for name, rec in records.items():  # keep the last block of each stage
        last[name.split('.')[0]] = (name, rec)
    return [last[k] for k in sorted(last)]


def plot(stages, out):
    fig, axes = plt.subplots(len(stages), 2,
                             figsize=(11, 2.25 * len(stages)), squeeze=False)
    for row, (name, rec) in zip(axes, stages):
        att = rec['att'].numpy()
        groups = len(rec['freqs'])
        row[0].bar(range(len(att)), att, width=1.0, color='tab:blue')
        row[0].set_xlim(0, len(att))
        row[0].set_ylim(0, 1)
        row[0].set_title(f'{name}: channel attention', fontsize=9)
        for g in range(1, groups):
            row[0].axvline(g * len(att) / groups, color='gray', lw=0.5)
        response = rec['response'].abs().view(groups, -1).mean(1).numpy()
        row[1].bar(range(groups), response, color='tab:orange')
        row[1].set_xticks(range(groups))
        row[1].set_xticklabels([f'{u},{v}' for u, v in rec['freqs']],
                               rotation=90, fontsize=6)
        row[1].set_title(f'{name}: mean |DCT response| per frequency '
                         'group (u,v on its filter)', fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', default='attention.png')
    parser.add_argument('--size', type=int, default=224,
                        help='short side the image is resized to')
    parser.add_argument('--work-dir',
                        help='your run\'s work dir (trusted checkpoints)')
    args = parser.parse_args(argv)
    model = init_model(args.config, args.checkpoint, args.work_dir)
    stages = capture(model, args.image, args.size)
    plot(stages, args.out)
    print(f'{args.out}: {len(stages)} stages')


if __name__ == '__main__':
    main()
