# SE-ResNet-50 (MMPretrain's SEResNet) with the FcaNet release's recipe:
# the paper's SENet-50 comparison, apples to apples.
_base_ = './resnet50_8xb32-release-recipe_in1k.py'

model = dict(backbone=dict(type='SEResNet', se_ratio=16))
