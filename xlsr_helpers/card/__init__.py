"""Step 06: a complete model card, an upload folder that is verified by reloading it, an optional push.

The seed asked participants to paste their WER into a README full of TODOs. Here everything in the card
comes from the run folder. One module per concern, in the order the step uses them:

* ``run_info``: the run's config and reports (``05_evaluate/metrics.json`` required), the data parameters as
  steps 01-02 recorded them in run.json, ``ModelCardError``;
* ``splits``: what the card may say about its splits — the speakers they share (step 01's leakage report), and
  whether the test split is the source's whole one (else ``test-filtered`` / ``test-held-out`` in the model-index);
* ``license``: the card's license — the base model's (its model card, or a table of well-known ids) unless
  LICENSE says otherwise; a LICENSE that grants what the base's does not (e.g. commercial use of a CC-BY-NC
  base) is refused unless LICENSE_CONFIRMED;
* ``names``: language names, the Hub's language tag, the repository name, the data sources as a card names them;
* ``upload``: the upload folder ``06_model_card/upload/`` — every file that defines the checkpoint (config,
  safetensors weights, tokenizer and feature-extractor/processor files), the run's ``normalizer.json``, for MMS
  adapters the ``adapter.<lang>.safetensors`` file, and when step 05 decoded with an n-gram LM that LM in
  pyctcdecode's layout (``alphabet.json`` + ``language_model/``, loaded by ``BeamSearchDecoderCTC.load_from_dir``);
* ``snippets``: the card's code (usage, greedy and with the LM; the commands that reproduce its numbers);
* ``text``: the card itself — YAML header from huggingface_hub's ``ModelCardData`` (model-index with the test
  WER and CER of each decoding), body from the template ``template.md`` and the run's reports;
* ``verify``: the folder loaded back with ``AutoModelForCTC`` + ``AutoProcessor`` and with
  ``pipeline("automatic-speech-recognition")`` on a test clip: both must give the greedy text that step 05 wrote
  for that clip, and the shipped LM (pyctcdecode, as the card's code) the LM text of step 05;
* ``hub``: the token (HF_TOKEN, a Colab secret, a saved login, or a prompt that waits, also under "Run all"; never
  printed or written anywhere), the repository id with its namespace before the card names it, and
  ``HfApi().upload_folder`` when asked;
* ``step``: ``run_model_card``, all of the above in one call.
"""
