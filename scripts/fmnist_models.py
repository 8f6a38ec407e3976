#!/usr/bin/python3
"""Fashion-MNIST data loading and the three networks shipped as accsim traces.

Used by scripts/train_fmnist.py and scripts/export_trace.py. Needs only
Debian's python3-torch and python3-numpy (no torchvision).
"""
import gzip
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")

# Per-pixel mean and standard deviation of the 60,000 training images after
# scaling to [0, 1] (computed by dataset_stats() below over all pixels, float64,
# population std). Hard-coded so that preprocessing does not depend on
# re-reading the training set; train_fmnist.py recomputes and asserts them.
FMNIST_MEAN = 0.28604059698879553
FMNIST_STD = 0.35302424451492237

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """Read a (gzipped) IDX file into a numpy array of its stored dtype."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4",
              0x0D: ">f4", 0x0E: ">f8"}
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: size mismatch")
    return arr.reshape(dims)


def load_raw(split, data_dir=DATA_DIR):
    """Return (images uint8 [N,28,28], labels int64 [N]) for 'train' or 'test'."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels.astype(np.int64)


def dataset_stats(train_images_u8):
    x = train_images_u8.astype(np.float64) / 255.0
    return float(x.mean()), float(x.std())


def preprocess(images_u8, mean=FMNIST_MEAN, std=FMNIST_STD):
    """uint8 [N,28,28] -> float32 NCHW [N,1,28,28]: (x/255 - mean) / std.

    Computed in float32 in exactly this order; this is the preprocessing
    contract written to trace.json.
    """
    x = images_u8.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x[:, None, :, :], dtype=np.float32)


def preprocessing_record(mean=FMNIST_MEAN, std=FMNIST_STD):
    return {
        "source_dtype": "uint8",
        "scale": 1.0 / 255.0,
        "scale_expr": "x / 255",
        "mean": [mean],
        "std": [std],
        "formula": "float32((x_uint8 / 255 - mean) / std), per channel",
        "layout": "NCHW",
        "channels": 1,
        "height": 28,
        "width": 28,
        "applied_in_inputs_npy": True,
        "inside_onnx_graph": False,
        "stats_from": "Fashion-MNIST training split (60,000 images), all pixels",
    }


def dataset_record(n, data_dir=DATA_DIR):
    return {
        "name": "fashion-mnist",
        "split": "test",
        "source_files": [os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"),
                         os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")],
        "selection": f"first {n} images of the 10,000-image test split, in file order",
        "first_index": 0,
        "count": n,
        "num_classes": 10,
        "class_names": CLASSES,
    }


class SmallCNN(nn.Module):
    """conv3x3(16)-relu-maxpool / conv3x3(32)-relu-maxpool / fc128-relu / fc10."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + sc)


class SmallResNet(nn.Module):
    """ResNet-8 style for 28x28 inputs (about 78k parameters, 9.3M MACs).

    stem: conv3x3(1->16) + BN + ReLU, 28x28
    stage 1: basic block, 16 ch, 28x28 (identity shortcut)
    stage 2: basic block, 32 ch, stride 2 -> 14x14 (1x1 conv + BN shortcut)
    stage 3: basic block, 64 ch, stride 2 -> 7x7 (1x1 conv + BN shortcut)
    global average pool, fc(64 -> 10)
    """

    def __init__(self, widths=(16, 32, 64), blocks=(1, 1, 1), num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(cin, w, stride))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # zero-init the last BN of each residual branch
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        x = self.layers(self.stem(x))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


class Attention(nn.Module):
    """Multi-head self-attention written out (not nn.MultiheadAttention), so
    that the export is the plain MatMul/Softmax graph an accelerator runs:
    one QKV projection, Q·Kᵀ per head, softmax, softmax·V, output projection."""

    def __init__(self, dim, heads):
        super().__init__()
        assert dim % heads == 0
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(x)


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: x + attn(LN(x)), x + MLP(LN(x))."""

    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class SmallViT(nn.Module):
    """Vision transformer for 28x28 inputs (about 135k parameters, 2.4M MACs).

    patch embedding: conv7x7 stride 7 (1 -> 64), 16 patches of 7x7
    class token + learned position embedding: 17 tokens of 64
    4 pre-norm encoder blocks: 4 heads of 16, GELU MLP 64 -> 128 -> 64
    final LayerNorm, the class token's features -> fc(64 -> 10)
    """

    def __init__(self, patch=7, dim=64, depth=4, heads=4, mlp_dim=128, num_classes=10, image=28):
        super().__init__()
        self.patch_embed = nn.Conv2d(1, dim, patch, stride=patch)
        tokens = (image // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def build_model(kind):
    if kind == "cnn":
        return SmallCNN()
    if kind == "resnet":
        return SmallResNet()
    if kind == "vit":
        return SmallViT()
    raise ValueError(f"unknown model {kind!r}")


def count_params(model):
    return int(sum(p.numel() for p in model.parameters()))


def count_macs_torch(model, input_shape=(1, 1, 28, 28)):
    """MACs per image of Conv2d and Linear layers, by forward hooks.

    Matrix products written as `@` (attention's Q·Kᵀ and softmax·V) have no
    module to hook and are not counted; the trace's macs_per_image, read from
    the ONNX graph, counts them.
    """
    total = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += out[0].numel() * k

    def lin_hook(m, inp, out):  # once per token when the input has a sequence dimension
        total[0] += out[0].numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(input_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return int(total[0])
