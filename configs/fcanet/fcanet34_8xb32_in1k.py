# FcaNet-34 on ImageNet with the release's recipe. Published top-1: 75.07.
_base_ = './fcanet50_8xb32_in1k.py'

model = dict(backbone=dict(depth=34), head=dict(in_channels=512))
