"""Speed perturbation of training clips (SPEED_PERTURBATION): each training clip, each time it is batched, is
played at a speed drawn from a few factors (0.9 / 1.0 / 1.1 in Kaldi, SpeechBrain, NeMo and ESPnet recipes).

The perturbation is Kaldi's ``sox speed``: the clip is resampled from ``factor x 16 kHz`` to 16 kHz, i.e. played
``factor`` times faster. Tempo *and* pitch change together (a 440 Hz tone becomes 440 x factor Hz, a 3 s clip at
1.1 lasts 3 / 1.1 s), which is what those recipes do and what Ko et al. (2015, "Audio augmentation for speech
recognition") measured to beat tempo-only changes: it imitates other voices (vocal-tract length) as well as other
speaking rates. The resampler is torchaudio's own speed transform (``torchaudio.transforms.Speed``: band-limited
sinc interpolation, its filter made once per factor); the ratios 17.6:16 and 14.4:16 reduce to 11:10 and 9:10, so
a polyphase filter of a few taps per output sample does it (measured by ``benchmarks/speed_perturbation.py``).

It runs on the fly, on each decoded float32 clip of a *training* batch (``DataCollatorCTCWithPadding.augment``),
never on evaluation batches and never as prepared copies on disk: three copies would triple the prepared audio,
fix one draw per copy, and the cost per clip is small next to a training step (the benchmark's table).

The clip's factor comes from a key: :func:`speed_factor` is a pure function of (key, factors), so that a run's
draws are reproducible. The collator draws the keys from torch's global generator, which the Trainer seeds with
SEED (``set_seed``), seeds per data-loader worker (``seed_worker``) and saves in every checkpoint (a resumed run
continues the same stream); each epoch therefore hears other speeds than the last.

Lengths: a clip sped up by 1.1 is 9 % shorter. The feasibility filter and the duration batches use the prepared
(unperturbed) lengths. A clip that fitted its labels only within 10 % of its output frames can then, in that draw,
no longer fit them: its CTC loss is infinite and is zeroed (``ctc_zero_infinity=True``, set on every model by
``models.model_overrides``): that clip teaches nothing in that batch and harms nothing. At ~50 frames a second
this needs ~45 letters a second (speech has ~15), i.e. a clip whose transcript does not match it anyway.
A clip slowed down to 0.9 is 11 % longer: batches under MAX_BATCH_SECONDS can hold up to 11 % more audio than
the budget, and the memory measurement of GRADIENT_CHECKPOINTING="auto" (made on unperturbed audio) has that
much less margin.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..constants import SAMPLING_RATE

# Kaldi's, SpeechBrain's and NeMo's speed factors: what SPEED_PERTURBATION="0.9,1.0,1.1" gives.
STANDARD_SPEED_FACTORS = (0.9, 1.0, 1.1)
KEY_RANGE = 2 ** 31  # the collator draws each clip's key in [0, KEY_RANGE)


def parse_speed_factors(text: str) -> tuple[float, ...]:
    """SPEED_PERTURBATION -> factors: "" (off) -> (); "0.9,1.0,1.1" -> (0.9, 1.0, 1.1). Each factor in (0.5, 2]."""
    factors = tuple(float(part) for part in str(text or "").replace(" ", "").split(",") if part)
    bad = [f for f in factors if not 0.5 < f <= 2.0]
    if bad:
        raise ValueError(f"SPEED_PERTURBATION={text!r}: factors must lie in (0.5, 2], got {bad}")
    if factors and set(factors) == {1.0}:
        return ()
    return factors


def change_speed(array: np.ndarray, factor: float, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """``array`` played ``factor`` times faster (tempo and pitch): resampled from factor x rate to rate.

    The result has ``ceil(len / factor)`` samples; factor 1.0 returns the array itself."""
    if factor == 1.0:
        return array
    import torch

    with torch.no_grad():
        return _speed_transform(float(factor), int(sampling_rate))(torch.from_numpy(
            np.ascontiguousarray(array, dtype=np.float32)))[0].numpy()


@functools.lru_cache(maxsize=None)
def _speed_transform(factor: float, sampling_rate: int):
    """torchaudio's ``Speed`` transform (its band-limited resampler, the filter computed once per factor)."""
    from torchaudio.transforms import Speed

    if abs(sampling_rate * factor - round(sampling_rate * factor)) > 1e-6:
        raise ValueError(f"speed factor {factor} is not a whole number of Hz at {sampling_rate} Hz")
    return Speed(orig_freq=sampling_rate, factor=factor)


def speed_factor(key: int, factors) -> float:
    """The factor of the clip drawn with ``key`` (uniform over ``factors``); the same key, the same factor."""
    return float(factors[int(np.random.default_rng(int(key)).integers(len(factors)))])


@dataclass(frozen=True)
class SpeedPerturbation:
    """The collator's ``augment``: ``(clip, key) -> clip`` at a speed drawn from ``factors`` by ``key``."""

    factors: tuple[float, ...] = STANDARD_SPEED_FACTORS
    sampling_rate: int = SAMPLING_RATE

    def __call__(self, array: np.ndarray, key: int) -> np.ndarray:
        return change_speed(array, speed_factor(key, self.factors), self.sampling_rate)

    @classmethod
    def from_setting(cls, text: str) -> "SpeedPerturbation | None":
        """SPEED_PERTURBATION -> the augment, or None when it is off ("" or only 1.0)."""
        factors = parse_speed_factors(text)
        return cls(factors) if factors else None
