"""An independent implementation of the released FcaNet (ImageNet), written
from the facts sheet in torchvision's ResNet layout, for parity tests.

It follows the release literally: per-channel DCT filter buffer built with
the unnormalised-then-scaled cosine formula, multiply-then-sum squeeze,
adaptive average pooling to the filter size for other inputs.
"""
import math

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from mmfca.testing import release_squeeze

TOP16_U = [0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2]
TOP16_V = [0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2]
DCT_SIZE = {64: 56, 128: 28, 256: 14, 512: 7}


def build_filter(pos, freq, length):
    result = math.cos(math.pi * freq * (pos + 0.5) / length) / \
        math.sqrt(length)
    return result if freq == 0 else result * math.sqrt(2)


class DCTLayer(nn.Module):

    def __init__(self, height, width, mapper_x, mapper_y, channel):
        super().__init__()
        weight = torch.zeros(channel, height, width)
        c_part = channel // len(mapper_x)
        for i, (u, v) in enumerate(zip(mapper_x, mapper_y)):
            for tx in range(height):
                for ty in range(width):
                    weight[i * c_part:(i + 1) * c_part, tx, ty] = \
                        build_filter(tx, u, height) * \
                        build_filter(ty, v, width)
        self.register_buffer('weight', weight)


class ReleaseAttention(nn.Module):

    def __init__(self, channel, dct_size, reduction=16):
        super().__init__()
        self.dct_size = dct_size
        scale = dct_size // 7
        self.dct_layer = DCTLayer(dct_size, dct_size,
                                  [u * scale for u in TOP16_U],
                                  [v * scale for v in TOP16_V], channel)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False), nn.Sigmoid())

    def forward(self, x):
        # the release's pool-then-filter squeeze (mmfca.testing's, written
        # once), then its excitation
        n, c = x.shape[:2]
        y = self.fc(release_squeeze(x, self.dct_layer.weight)).view(n, c, 1, 1)
        return x * y.expand_as(x)


class ReleaseBasicBlock(BasicBlock):

    def __init__(self, inplanes, planes, *args, **kwargs):
        super().__init__(inplanes, planes, *args, **kwargs)
        self.att = ReleaseAttention(planes, DCT_SIZE[planes])

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.att(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


class ReleaseBottleneck(Bottleneck):

    def __init__(self, inplanes, planes, *args, **kwargs):
        super().__init__(inplanes, planes, *args, **kwargs)
        self.att = ReleaseAttention(planes * 4, DCT_SIZE[planes])

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.att(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


LAYOUTS = {
    18: (ReleaseBasicBlock, [2, 2, 2, 2]),
    34: (ReleaseBasicBlock, [3, 4, 6, 3]),
    50: (ReleaseBottleneck, [3, 4, 6, 3]),
    101: (ReleaseBottleneck, [3, 4, 23, 3]),
}


def release_fcanet(depth, seed=0):
    """The released network with random weights and BN statistics."""
    block, layers = LAYOUTS[depth]
    model = ResNet(block, layers)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith('dct_layer.weight') or \
                    name.endswith('num_batches_tracked'):
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(('bn1.weight', 'bn2.weight', 'bn3.weight',
                                'downsample.1.weight')):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.25)
            else:
                fan_in = t[0].numel() if t.dim() > 1 else 1
                t.copy_(torch.randn(t.shape, generator=gen) / fan_in**0.5)
    return model.eval()


def release_features(model, x):
    """The four stage outputs of the release network."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    outs = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = layer(x)
        outs.append(x)
    return outs
