"""The card's license (xlsr_helpers/card/license.py): the base model's unless LICENSE says otherwise, and a LICENSE
that grants what the base's does not refused unless LICENSE_CONFIRMED."""

from __future__ import annotations

import pytest

from xlsr_helpers.card.license import (DEFAULT_LICENSE, LicenseError, base_license, card_license,
                                       read_card_license, restriction)
from xlsr_helpers.config import Config


def _checkpoint(folder, license: str | None):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "wav2vec2"}')
    if license is not None:
        (folder / "README.md").write_text(f"---\nlicense: {license}\nlanguage: tr\n---\n\n# A model\n")
    return folder


@pytest.fixture
def nc_base(tmp_path):
    return _checkpoint(tmp_path / "mms-like", "cc-by-nc-4.0")


def test_the_base_license_is_read_from_its_model_card_or_the_table(tmp_path, nc_base):
    assert read_card_license(str(nc_base)) == "cc-by-nc-4.0"
    assert base_license(str(nc_base)) == ("cc-by-nc-4.0", f"the model card of {nc_base}")
    # offline (nothing cached): the table of well-known ids
    assert base_license("facebook/mms-1b-all")[0] == "cc-by-nc-4.0"
    assert base_license("facebook/mms-300m")[0] == "cc-by-nc-4.0"
    assert base_license("facebook/wav2vec2-xls-r-300m")[0] == "apache-2.0"
    assert base_license("facebook/w2v-bert-2.0")[0] == "mit"
    assert base_license("hf-audio/omniasr-ctc-300m-v2")[0] == "apache-2.0"
    assert base_license("nvidia/parakeet-ctc-1.1b")[0] == "cc-by-4.0"
    unknown, why = base_license(str(_checkpoint(tmp_path / "bare", None)))
    assert unknown is None and "nothing says" in why
    assert base_license("tiny")[0] is None


def test_an_empty_license_takes_the_base_models(tmp_path, nc_base):
    chosen = card_license(Config(model=str(nc_base)))
    assert chosen.license == "cc-by-nc-4.0" and "base model's license" in chosen.note
    assert card_license(Config(model="facebook/w2v-bert-2.0")).license == "mit"
    fallback = card_license(Config(model="tiny"))
    assert fallback.license == DEFAULT_LICENSE and "check the base model's terms" in fallback.note


def test_a_more_permissive_license_than_a_non_commercial_base_is_refused(nc_base):
    with pytest.raises(LicenseError, match="non-commercial.*LICENSE_CONFIRMED=True"):
        card_license(Config(model=str(nc_base), license="apache-2.0"))
    with pytest.raises(LicenseError, match="mms-1b-all"):
        card_license(Config(model="facebook/mms-1b-all", license="mit"))
    confirmed = card_license(Config(model=str(nc_base), license="apache-2.0", license_confirmed=True))
    assert confirmed.license == "apache-2.0" and "LICENSE_CONFIRMED" in confirmed.note
    same = card_license(Config(model=str(nc_base), license="cc-by-nc-sa-4.0"))  # still non-commercial: allowed
    assert same.license == "cc-by-nc-sa-4.0"
    assert card_license(Config(model="facebook/wav2vec2-xls-r-300m", license="mit")).license == "mit"


def test_share_alike_and_no_derivatives_bases():
    assert restriction("cc-by-sa-4.0", "apache-2.0").startswith("cc-by-sa-4.0 is share-alike")
    assert restriction("cc-by-sa-4.0", "cc-by-sa-4.0") == ""
    assert "no derivatives" in restriction("cc-by-nd-4.0", "cc-by-4.0")
    assert restriction("apache-2.0", "mit") == "" and restriction("cc-by-4.0", "apache-2.0") == ""


def test_step_06_refuses_before_writing_anything(tmp_path, nc_base):
    from xlsr_helpers.card.step import run_model_card

    cfg = Config(model=str(nc_base), license="apache-2.0", run_dir=str(tmp_path / "run"))
    with pytest.raises(LicenseError):
        run_model_card(cfg)
    assert not (tmp_path / "run").exists()
