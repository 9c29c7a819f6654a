# FcaNet-152 on ImageNet with the release's recipe. Published top-1: 80.08.
_base_ = './fcanet50_8xb32_in1k.py'

model = dict(backbone=dict(depth=152), head=dict(in_channels=2048))
