"""Step 06 in one call, as ``xlsr run`` and notebook 06 do it: the upload folder, the card, the check
against step 05's transcriptions of the first test clip, and the push when PUSH_TO_HUB asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..evaluate import load_test_split, read_transcriptions
from ..inference import GREEDY, LM
from ..model_vocab import keeps_model_vocabulary
from .hub import hub_target, push_to_hub
from .license import card_license
from .run_info import read_run
from .text import build_card, write_card
from .upload import NORMALIZER_FILE, lm_source, model_source, prepare_upload
from .verify import verify_upload


@dataclass
class CardResult:
    card_path: Path
    upload_dir: Path
    files: list[str]
    repo_id: str
    verification: dict
    push: dict
    card_text: str

    @property
    def header(self) -> str:
        return self.card_text.split("---")[1].strip()


def run_model_card(cfg: Config, push: bool | None = None, ask: bool = False) -> CardResult:
    """Step 06: upload folder, card, verification, optional push (PUSH_TO_HUB). The repository id gets its namespace
    before the card is written (:func:`~.hub.hub_target`; ``ask``: prompt for a token when none is found)."""
    push = cfg.push_to_hub if push is None else push
    card_license(cfg)  # a LICENSE the base model's does not allow is refused before anything is written
    info = read_run(cfg)
    target = hub_target(cfg, push, ask=ask)
    model_id = target.repo_id

    upload_dir = Path(cfg.upload_dir)
    normalizer = cfg.step_dir("02_normalize") / NORMALIZER_FILE
    files = prepare_upload(model_source(cfg), upload_dir, normalizer if normalizer.exists() else None, lm_source(info),
                           keep_tokenizer_files=keeps_model_vocabulary(cfg))
    card_path = write_card(build_card(info, model_id, files), upload_dir)
    card_text = card_path.read_text(encoding="utf-8")

    # Verify on the first test clip against step 05's own transcriptions of it (each decoding).
    test = load_test_split(cfg)
    first = test["id"][0] if "id" in test.column_names else "0"
    step05 = read_transcriptions(cfg.step_dir("05_evaluate"))
    expected = {decoding: texts.get(first) for decoding, texts in step05.items()}
    # Step 05 in half precision (CUDA) may differ from this float32 check in a near-tie: compared, not required.
    strict = info.metrics.get("dtype", "float32") == "float32"
    verification = verify_upload(upload_dir, test[0]["audio"], *(expected.get(d) if strict else None
                                                                 for d in (GREEDY, LM)))
    verification["clip"] = first
    verification["matches_05_evaluate"] = (verification["model_and_processor"] == expected.get(GREEDY)
                                           and verification.get("lm") == expected.get(LM))

    pushed = {"pushed": False, "repo_id": model_id, "message": "PUSH_TO_HUB is False: nothing uploaded."}
    if push:
        pushed = push_to_hub(upload_dir, model_id, token=target.token)
    return CardResult(card_path, upload_dir, sorted(p.name for p in upload_dir.iterdir()), model_id,
                      verification, pushed, card_text)
