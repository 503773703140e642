"""A tiny random Whisper checkpoint written locally, for the comparison's ASR-pipeline path.

No machine of this project reaches the Hub. transformers builds a Whisper tokenizer offline from a byte-level BPE
``vocab.json`` + ``merges.txt`` (trained here with the tokenizers library in well under a second) and the special
tokens Whisper's generation needs (<|startoftranscript|>, language tokens, <|transcribe|>, <|notimestamps|>); a
``WhisperConfig`` shrunk to one 32-wide layer each side; a ``GenerationConfig`` that knows the language tokens, so
that the pipeline can be told the language. It writes random text: what is tested is the path (the pipeline, the
normalization of its text, the scoring), not the words.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["<|startoftranscript|>", "<|tr|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
           "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
TEXT = ["Merhaba dünya, okul kedi köpek güzel!", "Hello world."]


def write_tiny_whisper(folder, seed: int = 0) -> Path:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TEXT * 20, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    bpe.save_model(str(folder))
    end = "<|endoftext|>"
    tokenizer = WhisperTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token=end,
                                 bos_token=end, eos_token=end, pad_token=end)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL})
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL}
    config = WhisperConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, num_mel_bins=80, max_target_positions=64,
                           decoder_start_token_id=ids["<|startoftranscript|>"], pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, max_length=8, no_timestamps_token_id=ids["<|notimestamps|>"],
        is_multilingual=True, lang_to_id={"<|tr|>": ids["<|tr|>"], "<|en|>": ids["<|en|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]})
    model.save_pretrained(folder)
    extractor = WhisperFeatureExtractor(feature_size=80)
    WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
