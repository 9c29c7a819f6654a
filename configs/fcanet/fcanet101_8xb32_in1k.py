# FcaNet-101 on ImageNet with the release's recipe. Published top-1: 79.64.
_base_ = './fcanet50_8xb32_in1k.py'

model = dict(backbone=dict(depth=101), head=dict(in_channels=2048))
