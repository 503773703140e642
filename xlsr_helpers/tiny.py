"""The ``tiny`` model (MODEL="tiny"): a small random CTC model for CPU rehearsals, and its arithmetic.

XLSR's architecture scaled down (TINY_ARCHITECTURE) on a fixed filterbank front-end (:func:`tiny_filterbank_`),
made to train to the same bits whatever the number of CPU threads (:func:`tiny_thread_independent_`).
``models.build_model`` builds it; its training recipe is ``families.TINY_TRAINING``, beside the other families'.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.parametrizations import _WeightNorm

from .constants import SAMPLING_RATE

# The tiny model: XLSR's transformer (pre-LN "stable layer norm", conv positional embedding, CTC head) scaled
# down to hidden 128 x 3 layers (~0.5M trained parameters), on a fixed filterbank front-end instead of a random
# 7-layer CNN. The feature encoder keeps XLSR's frame arithmetic (400-sample receptive field, 320-sample hop:
# 20 ms frames, the same output lengths) in two conv layers: 256 Hann-windowed cosine/sine filters at 64
# mel-spaced frequencies (+/- pairs), layer norm and GELU (a smooth magnitude), then a 1x1 conv that sums each
# band's four filters. Frozen like a pretrained encoder, it hands the transformer a spectrogram. Measured on
# the demo corpus (600 clips, 2 CPU cores): with XLSR's random 7-layer CNN (64 channels, frozen or trained)
# the model was still at CER ~0.8 after 800 updates of 8 clips; with the filterbank it passes CER 0.2 after
# ~500 (see tiny_filterbank_).
TINY_ARCHITECTURE = dict(
    hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=256,
    conv_dim=(256, 64), conv_kernel=(400, 1), conv_stride=(320, 1),
    feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=64,
    num_conv_pos_embedding_groups=16, feat_extract_activation="gelu", conv_bias=True,
)


def tiny_config(vocab_size: int, pad_token_id: int, **overrides):
    """Wav2Vec2Config of the ``tiny`` model (see TINY_ARCHITECTURE)."""
    from transformers import Wav2Vec2Config

    values = dict(TINY_ARCHITECTURE, vocab_size=vocab_size, pad_token_id=pad_token_id,
                  ctc_loss_reduction="mean", ctc_zero_infinity=True)
    values.update(overrides)
    return Wav2Vec2Config(**values)


def tiny_filterbank_(model, fmin: float = 80.0, fmax: float = 7600.0, sampling_rate: int = SAMPLING_RATE):
    """Set the tiny model's feature encoder to a fixed filterbank (in place; returns the model).

    Layer 0 (kernel 400 = 25 ms, hop 320 = 20 ms): for each of ``conv_dim[1]`` mel-spaced frequencies a
    Hann-windowed cosine and sine and their negatives, unit norm. Layer norm across the filters and GELU make
    GELU(x) + GELU(-x) ~ |x|. Layer 1 (1x1) adds each band's four outputs: a magnitude spectrum per frame.
    """
    fixed_filterbank_(model.wav2vec2.feature_extractor.conv_layers, fmin, fmax, sampling_rate)
    return model


def fixed_filterbank_(layers, fmin: float = 80.0, fmax: float = 7600.0, sampling_rate: int = SAMPLING_RATE):
    """The filterbank of :func:`tiny_filterbank_` written into two conv layers (``.conv`` each) of any model whose
    feature encoder has wav2vec2's layer-normed conv layers (Wav2Vec2, OmniASR's ``subsampling.conv_layers``)."""
    layout = "the filterbank needs two conv layers, conv_dim=(4*bands, bands), conv_kernel=(k, 1): the tiny layout"
    if len(layers) != 2:
        raise ValueError(layout)
    conv0, conv1 = layers[0].conv, layers[1].conv
    bands = conv1.out_channels
    if conv0.out_channels != 4 * bands or conv1.kernel_size[0] != 1:
        raise ValueError(layout)
    size = conv0.kernel_size[0]
    t = np.arange(size) / sampling_rate
    window = np.hanning(size)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    centers = 700.0 * (10 ** (np.linspace(mel(fmin), mel(fmax), bands) / 2595.0) - 1.0)
    filters = []
    for f in centers:
        for wave in (np.cos(2 * np.pi * f * t) * window, np.sin(2 * np.pi * f * t) * window):
            wave = wave / np.linalg.norm(wave)
            filters += [wave, -wave]
    with torch.no_grad():
        conv0.weight.copy_(torch.tensor(np.array(filters), dtype=conv0.weight.dtype).unsqueeze(1))
        conv0.bias.zero_()
        conv1.weight.zero_()
        conv1.bias.zero_()
        for band in range(bands):
            conv1.weight[band, 4 * band:4 * band + 4, 0] = 0.5
    return layers


class Float64WeightNorm(_WeightNorm):
    """g * v / ||v|| in float64, rounded to float32 once (see :func:`tiny_thread_independent_`)."""

    def forward(self, weight_g, weight_v):
        v = weight_v.double()
        others = [d for d in range(v.dim()) if d != self.dim % v.dim()]
        norm = torch.linalg.vector_norm(v, dim=others, keepdim=True)
        return (v * (weight_g.double() / norm)).to(weight_v.dtype)


class AffineAfterLayerNorm(torch.nn.LayerNorm):
    """Layer norm, then its scale and shift as two ops of their own (the same function, the same weights)."""

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, None, None, self.eps) * self.weight + self.bias


def tiny_thread_independent_(model):
    """Make the tiny model's training give the same numbers whatever the number of CPU threads (in place).

    Measured (torch 2.14, CPU, forward and backward of the tiny model at 1 and 2 threads, every activation and
    gradient compared bit for bit): two of its ops depended on the thread count, because torch's fused CPU
    kernels sum in one part per thread; all the others (linear layers, attention, convolutions, CTC loss,
    dropout masks, gradient clipping, AdamW) gave identical bits.

    - the conv positional embedding's weight, g * v / ||v|| (weight_norm over dim 2; ``_weight_norm_interface``):
      2e-8 apart. Here the same formula in float64, rounded once: the same bits, and through autograd the same
      gradients of g and v (65,536 values: well under a millisecond per update);
    - the gradients of every layer norm's scale and shift (``native_layer_norm_backward``): up to 3e-4 apart.
      Here the layer norm runs without them and the scale and shift follow as a multiply and an add, whose
      gradients sum over the rows in a fixed order: identical bits.

    Without this, the demo's training drifted apart from its 3rd update on, and its test WER was 67.9 with
    OMP_NUM_THREADS=1 and 65.8 with 2 (CER 18.1 and 17.5). The saved checkpoint is unchanged (the same
    parameters under the same names, which any Wav2Vec2 loader reads); this applies while this process trains.
    It covers training with the fixed filterbank frozen (the recipe): its convolutions' own weight gradients
    (FREEZE_FEATURE_ENCODER=False) also vary with the thread count. Another processor's arithmetic (other
    BLAS kernels) can still round differently.
    """
    conv = model.wav2vec2.encoder.pos_conv_embed.conv
    norms = getattr(getattr(conv, "parametrizations", None), "weight", None)
    if norms is None or not isinstance(norms[0], _WeightNorm):
        raise ValueError("tiny_thread_independent_ needs the conv positional embedding with torch's weight_norm "
                         "parametrization (the tiny layout)")
    norms[0] = Float64WeightNorm(norms[0].dim)
    for module in model.modules():
        if type(module) is torch.nn.LayerNorm and module.elementwise_affine and module.bias is not None:
            module.__class__ = AffineAfterLayerNorm
    return model
