# FcaNet-18 on ImageNet with the release's recipe. (no released model at this
# depth)
_base_ = './fcanet50_8xb32_in1k.py'

model = dict(backbone=dict(depth=18), head=dict(in_channels=512))
