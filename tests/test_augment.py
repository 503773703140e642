"""train/augment.py: speed perturbation (length, pitch, identity, reproducible draws), the collator's augment on
training batches only, and SpecAugment's frequency mask reaching the model's config."""

import numpy as np
import pytest
import torch

from test_train import base_run, processor, run_cfg  # noqa: F401  (fixtures)

from xlsr_helpers import families, models
from xlsr_helpers.audio import to_int16
from xlsr_helpers.config import Config
from xlsr_helpers.constants import SAMPLING_RATE
from xlsr_helpers.families import resolve
from xlsr_helpers.train import augment, data, step


def _sine(hz: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _peak_hz(array: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(array * np.hanning(len(array))))
    return float(np.argmax(spectrum)) * SAMPLING_RATE / len(array)


@pytest.mark.parametrize("factor", [0.9, 1.1, 0.95, 1.05])
def test_a_faster_clip_is_shorter_and_higher_by_the_factor(factor):
    clip = _sine(440.0)
    out = augment.change_speed(clip, factor)
    assert out.dtype == np.float32
    assert abs(len(out) - len(clip) / factor) <= 2, "tempo: len / factor"
    resolution = SAMPLING_RATE / len(out)  # one FFT bin
    assert abs(_peak_hz(out) - 440.0 * factor) <= resolution, "pitch changes with the tempo (resampling)"
    assert abs(float(np.sqrt(np.mean(out[1000:-1000] ** 2))) - 0.5 / np.sqrt(2)) < 0.01, "loudness unchanged"


def test_factor_one_is_the_identity():
    clip = _sine(300.0, 1.0)
    assert augment.change_speed(clip, 1.0) is clip
    assert augment.SpeedPerturbation((1.0,))(clip, 12345) is clip
    assert augment.SpeedPerturbation.from_setting("") is None
    assert augment.SpeedPerturbation.from_setting("1.0") is None, "only 1.0: nothing to perturb"


def test_the_setting_is_parsed_and_checked():
    assert augment.parse_speed_factors("0.9, 1.0,1.1") == (0.9, 1.0, 1.1)
    assert augment.SpeedPerturbation.from_setting("0.9,1.0,1.1").factors == augment.STANDARD_SPEED_FACTORS
    with pytest.raises(ValueError, match="SPEED_PERTURBATION"):
        augment.parse_speed_factors("0.9,3")


def test_a_key_always_gives_the_same_factor_and_the_factors_are_drawn_evenly():
    factors = augment.STANDARD_SPEED_FACTORS
    assert [augment.speed_factor(k, factors) for k in range(50)] == [augment.speed_factor(k, factors) for k in range(50)]
    drawn = [augment.speed_factor(k, factors) for k in range(3000)]
    shares = [drawn.count(f) / len(drawn) for f in factors]
    assert all(abs(share - 1 / 3) < 0.04 for share in shares), shares
    clip = _sine(440.0, 0.5)
    np.testing.assert_array_equal(augment.SpeedPerturbation()(clip, 7), augment.SpeedPerturbation()(clip, 7))


def _features(n: int = 12):
    rng = np.random.default_rng(0)
    return [{"samples": to_int16(rng.normal(0, 0.2, 8000 + 320 * i).astype(np.float32)), "labels": [3, 4, 5],
             "input_length": 8000 + 320 * i} for i in range(n)]


def test_the_collator_perturbs_reproducibly_by_seed_and_differently_each_epoch(processor):  # noqa: F811
    collate = data.DataCollatorCTCWithPadding(processor, augment=augment.SpeedPerturbation())
    features = _features()
    torch.manual_seed(42)
    first_epoch = collate(features)[data.INPUT_LENGTHS_KEY].tolist()
    second_epoch = collate(features)[data.INPUT_LENGTHS_KEY].tolist()
    torch.manual_seed(42)
    again = collate(features)[data.INPUT_LENGTHS_KEY].tolist()
    assert first_epoch == again, "the same seed, the same speeds"
    assert first_epoch != second_epoch, "the next pass over the same clips hears other speeds"
    original = [f["input_length"] for f in features]
    ratios = {round(o / n, 2) for o, n in zip(original, first_epoch)}
    assert ratios <= {0.9, 1.0, 1.1} and len(ratios) > 1, ratios


def test_the_collator_reports_the_perturbed_lengths(processor):  # noqa: F811
    seen = []

    def faster(array, key):
        out = augment.change_speed(array, 1.1)
        seen.append(len(out))
        return out

    features = _features(4)
    batch = data.DataCollatorCTCWithPadding(processor, augment=faster)(features)
    lengths = batch[data.INPUT_LENGTHS_KEY].tolist()
    assert lengths == seen and all(abs(n - f["input_length"] / 1.1) <= 2 for n, f in zip(lengths, features))
    assert batch["input_values"].shape[1] == max(lengths)
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    plain = data.DataCollatorCTCWithPadding(processor)(features)
    assert plain[data.INPUT_LENGTHS_KEY].tolist() == [f["input_length"] for f in features], "no augment, no change"


def test_only_training_batches_are_perturbed(run_cfg):  # noqa: F811
    training = step.Training(run_cfg.updated(speed_perturbation="0.9,1.0,1.1"), log=lambda *a: None)
    training.load()
    training.build_model()
    training.prepare()
    trainer = training.make_trainer()
    train_collate = trainer.get_train_dataloader().collate_fn
    eval_collate = trainer.get_eval_dataloader().collate_fn
    assert isinstance(train_collate.augment, augment.SpeedPerturbation)
    assert train_collate.augment.factors == (0.9, 1.0, 1.1)
    assert eval_collate.augment is None and trainer.data_collator.augment is None
    rows = [training.prepared["eval"][i] for i in range(4)]
    for _ in range(3):
        lengths = trainer.get_eval_dataloader().collate_fn(rows)[data.INPUT_LENGTHS_KEY].tolist()
        # the rows' lengths are the metadata's (ms); a perturbed clip would be ~10 % off, not a few samples
        assert all(abs(a - r["input_length"]) <= 160 for a, r in zip(lengths, rows)), "evaluation hears clips as they are"
    off = step.Training(run_cfg.updated(speed_perturbation=""), log=lambda *a: None)
    assert off.cfg.speed_perturbation == "" and augment.SpeedPerturbation.from_setting(off.cfg.speed_perturbation) is None


def test_the_frequency_mask_reaches_the_models_config(processor):  # noqa: F811
    cfg = resolve(Config(model="tiny", mask_feature_prob=0.25, mask_feature_length=8))
    model = models.build_model(cfg, processor, log=lambda *a: None)
    assert model.config.mask_feature_prob == 0.25 and model.config.mask_feature_length == 8
    seed = models.build_model(resolve(Config(model="tiny")), processor, log=lambda *a: None)
    recipe = families.RECIPES["tiny"].training
    assert seed.config.mask_feature_prob == recipe["mask_feature_prob"]
    assert seed.config.mask_feature_length == recipe["mask_feature_length"]
    for recipe in families.RECIPES.values():
        assert {"mask_feature_prob", "mask_feature_length", "speed_perturbation"} <= set(recipe.training)
        augment.parse_speed_factors(recipe.training["speed_perturbation"])


def test_the_frequency_mask_masks_hidden_channels_in_training(processor):  # noqa: F811
    cfg = resolve(Config(model="tiny", mask_feature_prob=0.5, mask_feature_length=8, mask_time_prob=0.0))
    model = models.build_model(cfg, processor, log=lambda *a: None).train()
    hidden = torch.randn(2, 50, model.config.hidden_size)
    masked = model.wav2vec2._mask_hidden_states(hidden.clone())
    zeroed = (masked == 0).all(dim=1)  # channels masked over every frame of a clip
    assert zeroed.any() and not zeroed.all()
    model.eval()
    torch.testing.assert_close(model.wav2vec2._mask_hidden_states(hidden.clone()), hidden)
