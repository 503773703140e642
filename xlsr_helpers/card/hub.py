"""The Hugging Face Hub: the token, the repository id with its namespace, and pushing the upload folder.

The token is ``HF_TOKEN`` (an environment variable, or a Colab secret of that name: huggingface_hub's
``get_token`` reads both) or a saved login (``hf auth login``). When there is none and someone is there to type
one (``ask``: notebook 06 in Jupyter or Colab), a password prompt *waits* for it — also under "Run all", where
``notebook_login()``'s widget does not: the cells after it ran without a token, and the card was written with a
repository id without its namespace. Nobody to ask (papermill, ``xlsr run``, a script without a terminal): no
prompt, and the push says what to do.

The repository id has its namespace before the card is written, since the card's usage code names it:
``HUB_MODEL_ID = "org/name"`` as given, else ``<the token's user>/<name>`` (``whoami``). Without a push no
token is needed and none is asked for; a card written then names the repository without a namespace until
HUB_MODEL_ID or a push gives it one, and :func:`push_to_hub` refuses a folder whose card names another id.

The token is only handed to huggingface_hub: never printed, never written anywhere (not even huggingface_hub's
token file), never part of a message or a ``repr``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from .names import repo_id
from .run_info import ModelCardError
from .upload import CARD_FILE

TOKEN_PAGE = "https://huggingface.co/settings/tokens"
PROMPT = f"Hugging Face token with write access ({TOKEN_PAGE}), for the push: "
NO_TOKEN_MESSAGE = (
    "PUSH_TO_HUB is True but no Hugging Face token was found, so nothing was uploaded. Create a token with "
    f"write access at {TOKEN_PAGE}, then either set the HF_TOKEN environment variable (on Colab: the key icon -> "
    "add secret HF_TOKEN, notebook access on), or log in once with `hf auth login` in a terminal, or run "
    "notebook 06 in Jupyter or Colab, where it asks for the token and waits; then run it again. "
    "The upload folder is complete and can also be uploaded by hand: {folder}"
)
NO_NAMESPACE_NOTE = (
    "The card names the repository {repo!r} without a namespace (your Hub user or organization): set "
    "HUB_MODEL_ID = \"<user>/{repo}\", or PUSH_TO_HUB = True, and run this step again before uploading it."
)
_CARD_MODEL_ID = re.compile(r'^MODEL_ID = "([^"]*)"', re.MULTILINE)  # the card's usage code (snippets.usage_code)


class HubLoginError(RuntimeError):
    """The Hub did not accept the token, or a push would not match its card; said without the token."""


@dataclass
class HubTarget:
    """Where the model goes: the repository id (with its namespace when known), the token (never shown) and what
    to tell the user (why nothing will be pushed, or why the id has no namespace)."""

    repo_id: str
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    message: str = ""

    @property
    def has_namespace(self) -> bool:
        return "/" in self.repo_id


def find_token() -> str | None:
    """The Hugging Face token (HF_TOKEN, a saved login, a Colab secret), or None. Never print it."""
    from huggingface_hub import get_token

    return get_token()


def ask_token(prompt=None) -> str | None:
    """A token typed by whoever runs the notebook: a password prompt, which blocks until it is answered (Jupyter and
    Colab send it to the page, also under "Run all"); None when nobody can answer (papermill's kernel has no input,
    a script without a terminal) or the answer is empty. ``prompt`` defaults to ``getpass.getpass``, looked up at
    the call (ipykernel puts its own there while a cell runs)."""
    import getpass

    try:
        token = (prompt or getpass.getpass)(PROMPT)
    except (EOFError, OSError, NotImplementedError):  # IPython's StdinNotImplementedError is a NotImplementedError
        return None
    return str(token or "").strip() or None


def hub_user(token: str) -> str:
    """The name of the token's user (huggingface_hub's ``whoami``); HubLoginError when the Hub refuses the token."""
    import huggingface_hub

    try:
        return huggingface_hub.whoami(token=token)["name"]
    except Exception as error:  # noqa: BLE001 - said in plain words; the cause is chained (it holds no token)
        raise HubLoginError(
            f"The Hub did not accept the token ({type(error).__name__} from whoami): check that it is a token with "
            f"write access ({TOKEN_PAGE}), or set HUB_MODEL_ID = \"<user>/<name>\"."
        ) from error


def hub_target(cfg: Config, push: bool, ask: bool = False, prompt=None) -> HubTarget:
    """The repository the card names and the push uploads to, resolved before the card is written.

    Not pushing: HUB_MODEL_ID or the default name, no token looked for. Pushing: the token (:func:`find_token`,
    else, with ``ask``, :func:`ask_token`), and the namespace from HUB_MODEL_ID or from the token's user."""
    name = repo_id(cfg)
    if not push:
        return HubTarget(name, message="" if "/" in name else NO_NAMESPACE_NOTE.format(repo=name))
    token = find_token() or (ask_token(prompt) if ask else None)
    if not token:
        return HubTarget(name, message=NO_TOKEN_MESSAGE.format(folder=cfg.upload_dir))
    if "/" in name:
        return HubTarget(name, token)
    user = hub_user(token)
    return HubTarget(repo_id(cfg, user), token, user)


def card_model_id(upload_dir: str | Path) -> str | None:
    """The repository id that the upload folder's card names in its usage code, or None (no card, no usage code)."""
    card = Path(upload_dir) / CARD_FILE
    match = _CARD_MODEL_ID.search(card.read_text(encoding="utf-8")) if card.exists() else None
    return match.group(1) if match else None


def push_to_hub(upload_dir: str | Path, repo: str, token: str | None = None, private: bool = False) -> dict:
    """Create the model repository if needed and upload the folder; a clear message when there is no token.

    ``repo`` must have its namespace and be the id the folder's card names (:func:`hub_target` resolves it before
    the card is written): a card that names another repository would tell its readers to load the wrong model."""
    from huggingface_hub import HfApi

    token = token or find_token()
    if not token:
        message = NO_TOKEN_MESSAGE.format(folder=upload_dir)
        print(message)
        return {"pushed": False, "repo_id": repo, "message": message}
    if "/" not in repo:
        raise HubLoginError(f"The repository id {repo!r} has no namespace: resolve it with hub_target(cfg, push=True) "
                            "before the card is written, so that the card names it as it will be on the Hub.")
    named = card_model_id(upload_dir)
    if named is not None and named != repo:
        raise ModelCardError(f"The card in {upload_dir} names the repository {named!r}, not {repo!r}: write the card "
                             "again with this repository id (run step 06 again) before pushing.")
    api = HfApi(token=token)
    api.create_repo(repo_id=repo, repo_type="model", exist_ok=True, private=private)
    info = api.upload_folder(repo_id=repo, folder_path=str(upload_dir), repo_type="model",
                             commit_message="Upload model, processor and model card (xlsr-curriculum)")
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}"
    return {"pushed": True, "repo_id": repo, "url": str(url), "message": f"Uploaded to https://huggingface.co/{repo}"}
