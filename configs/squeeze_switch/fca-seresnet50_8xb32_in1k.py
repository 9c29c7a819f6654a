# SE-ResNet-50 -> its multi-spectral (FCA) version by one line: MMPretrain's
# own seresnet50_8xb32_in1k.py with the SE layers' global average pooling
# replaced by the top16 DCT squeeze (filters follow each stage's map size,
# 'mean' normalisation; see mmfca/models/layers/squeeze_switch.py).
# Parameters, names and FLOPs are SE-ResNet-50's.
_base_ = 'mmpretrain::seresnet/seresnet50_8xb32_in1k.py'
custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(backbone=dict(type='MultiSpectralSEResNet'))
