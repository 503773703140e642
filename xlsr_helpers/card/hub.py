"""The Hugging Face Hub: finding the token, the user's name, and pushing the upload folder.

The token is only handed to huggingface_hub: never printed, never written anywhere. Without one, the push
says what to do and uploads nothing; the folder is complete either way.
"""

from __future__ import annotations

from pathlib import Path

NO_TOKEN_MESSAGE = (
    "PUSH_TO_HUB is True but no Hugging Face token was found, so nothing was uploaded. Create a token with "
    "write access at https://huggingface.co/settings/tokens, then either set the HF_TOKEN environment "
    "variable (on Colab: the key icon -> add secret HF_TOKEN, notebook access on), or run "
    "`from huggingface_hub import notebook_login; notebook_login()` in a cell, and run this notebook again. "
    "The upload folder is complete and can also be uploaded by hand: {folder}"
)


def find_token() -> str | None:
    """The Hugging Face token (HF_TOKEN, a saved login, a Colab secret), or None. Never print it."""
    from huggingface_hub import get_token

    return get_token()


def hub_user(token: str) -> str:
    from huggingface_hub import HfApi

    return HfApi(token=token).whoami()["name"]


def push_to_hub(upload_dir: str | Path, repo: str, token: str | None = None, private: bool = False) -> dict:
    """Create the model repository if needed and upload the folder; a clear message when there is no token."""
    from huggingface_hub import HfApi

    token = token or find_token()
    if not token:
        message = NO_TOKEN_MESSAGE.format(folder=upload_dir)
        print(message)
        return {"pushed": False, "repo_id": repo, "message": message}
    if "/" not in repo:
        repo = f"{hub_user(token)}/{repo}"
    api = HfApi(token=token)
    api.create_repo(repo_id=repo, repo_type="model", exist_ok=True, private=private)
    info = api.upload_folder(repo_id=repo, folder_path=str(upload_dir), repo_type="model",
                             commit_message="Upload model, processor and model card (xlsr-curriculum)")
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}"
    return {"pushed": True, "repo_id": repo, "url": str(url), "message": f"Uploaded to https://huggingface.co/{repo}"}
