# FcaNet-101 with the release's converted ImageNet weights
# (tools/model_converters/fcanet2mmfca.py fca101.pth
# checkpoints/fcanet101_in1k.pth): used as ./fcanet50.py describes.
fcanet101 = dict(
    type='FcaNet',
    depth=101,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='checkpoints/fcanet101_in1k.pth',
        prefix='backbone.'))
