"""Step 06's Hub login (xlsr_helpers.card.hub.hub_target): the token is found or asked for (and waited for, as under
"Run all"), the repository id has its namespace before the card names it, and the token shows nowhere.

huggingface_hub's ``get_token`` and ``whoami`` are replaced by stand-ins: nothing here reaches the Hub.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xlsr_helpers.card import hub
from xlsr_helpers.card.hub import NO_TOKEN_MESSAGE, HubLoginError, ask_token, hub_target
from xlsr_helpers.config import Config

FAKE_TOKEN = "hf_FAKEloginTOKENneverSHOWN1234567890"


@pytest.fixture()
def hub_stand_in(monkeypatch):
    """No token anywhere (environment, saved login, Colab secret); ``whoami`` answers "ada" for FAKE_TOKEN and
    counts its calls."""
    import huggingface_hub

    calls = []

    def whoami(token=None):
        calls.append(token)
        if token != FAKE_TOKEN:
            raise PermissionError("401 Client Error: Unauthorized for url: https://huggingface.co/api/whoami-v2")
        return {"name": "ada"}

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.setattr(huggingface_hub, "whoami", whoami)
    return calls


def _cfg(tmp_path, **changes) -> Config:
    return Config(language="tr", model="tiny", run_dir=str(tmp_path / "run"), **changes)


def test_a_push_without_a_token_asks_waits_and_names_the_namespace(hub_stand_in, tmp_path):
    """Under "Run all" the prompt is the one thing that waits: the token typed there gives the user's namespace."""
    asked = []

    def prompt(text):  # a person typing the token into Jupyter's or Colab's password box
        asked.append(text)
        return f"  {FAKE_TOKEN}\n"

    target = hub_target(_cfg(tmp_path), push=True, ask=True, prompt=prompt)
    assert asked and "write access" in asked[0] and FAKE_TOKEN not in asked[0]
    assert target.repo_id == "ada/wav2vec2-tiny-tr" and target.user == "ada" and target.has_namespace
    assert target.token == FAKE_TOKEN and hub_stand_in == [FAKE_TOKEN]
    assert FAKE_TOKEN not in repr(target) and not target.message


def test_a_token_from_hf_token_is_used_without_asking(hub_stand_in, monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: FAKE_TOKEN)  # HF_TOKEN or a Colab secret
    target = hub_target(_cfg(tmp_path, hub_model_id="my-model"), push=True, ask=True,
                        prompt=lambda text: pytest.fail("asked although a token was found"))
    assert target.repo_id == "ada/my-model", "a HUB_MODEL_ID without namespace gets the user's"


def test_no_one_to_ask_means_no_push_and_a_message(hub_stand_in, tmp_path):
    """papermill's kernel cannot answer a prompt (IPython's StdinNotImplementedError): no token, nothing pushed."""
    from IPython.core.error import StdinNotImplementedError

    def no_stdin(text):
        raise StdinNotImplementedError("raw_input was called, but this frontend does not support input requests.")

    cfg = _cfg(tmp_path)
    target = hub_target(cfg, push=True, ask=True, prompt=no_stdin)
    assert target.token is None and target.message == NO_TOKEN_MESSAGE.format(folder=cfg.upload_dir)
    assert not hub_stand_in, "no whoami without a token"
    assert ask_token(lambda text: "") is None and ask_token(lambda text: (_ for _ in ()).throw(EOFError())) is None


def test_hub_model_id_with_a_namespace_needs_no_whoami_and_no_push_needs_no_token(hub_stand_in, monkeypatch,
                                                                                tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: FAKE_TOKEN)
    assert hub_target(_cfg(tmp_path, hub_model_id="org/name"), push=True).repo_id == "org/name"
    quiet = hub_target(_cfg(tmp_path), push=False, ask=True, prompt=lambda text: pytest.fail("asked without a push"))
    assert quiet.repo_id == "wav2vec2-tiny-tr" and quiet.token is None
    assert "without a namespace" in quiet.message and 'HUB_MODEL_ID = "<user>/wav2vec2-tiny-tr"' in quiet.message
    assert not hub_stand_in


def test_a_refused_token_is_said_plainly_without_the_token(hub_stand_in, tmp_path):
    with pytest.raises(HubLoginError, match="did not accept the token") as caught:
        hub_target(_cfg(tmp_path), push=True, ask=True, prompt=lambda text: "hf_wrongTOKEN000")
    assert "hf_wrongTOKEN000" not in str(caught.value)
    assert isinstance(caught.value.__cause__, PermissionError)


def test_find_token_is_huggingface_hubs(monkeypatch):
    """HF_TOKEN, a saved login and a Colab secret are all huggingface_hub's get_token's: read there, once."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: FAKE_TOKEN)
    assert hub.find_token() == FAKE_TOKEN


def test_the_prompt_waits_in_a_real_kernel_like_run_all(tmp_path):
    """In an IPython kernel whose front end takes input (Jupyter, Colab), the token prompt is a password request on
    the stdin channel, and the next queued cell (as "Run all" queues them) runs only after it was answered —
    unlike ``notebook_login()``'s widget."""
    import os
    import queue

    from jupyter_client.manager import start_new_kernel

    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    env.pop("HF_TOKEN", None)
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        client.execute(f"""
import huggingface_hub
huggingface_hub.get_token = lambda: None
huggingface_hub.whoami = lambda token=None: {{"name": "ada" if token == {FAKE_TOKEN!r} else None}}
from xlsr_helpers.config import Config
from xlsr_helpers.card.hub import hub_target
target = hub_target(Config(model="tiny", run_dir={str(tmp_path)!r}), push=True, ask=True)
""", allow_stdin=True)
        client.execute("print('next cell:', target.repo_id)", allow_stdin=True)
        request = client.get_stdin_msg(timeout=60)
        assert request["content"]["password"] is True and "token" in request["content"]["prompt"]
        early = []
        try:
            while True:
                message = client.get_iopub_msg(timeout=1)
                if message["msg_type"] in ("stream", "error"):
                    early.append(message["content"])
        except queue.Empty:
            pass
        assert not early, f"a cell ran (or failed) before the token was typed: {early}"
        client.input(FAKE_TOKEN)
        printed = []
        while not printed:
            message = client.get_iopub_msg(timeout=60)
            assert message["msg_type"] != "error", message["content"]
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])
        assert printed == ["next cell: ada/wav2vec2-tiny-tr\n"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
