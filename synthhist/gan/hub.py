"""Resolve `hf:owner/repo[@revision][/path/file]` network references through the Hugging Face cache."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from synthhist.errors import UserError

NETWORK_SUFFIXES = (".pkl", ".json")


def parse_hf_ref(ref: str) -> tuple[str, str | None, str | None]:
    """'hf:owner/repo@rev/dir/file.pkl' -> ('owner/repo', 'rev', 'dir/file.pkl'); file/revision may be None."""
    m = re.fullmatch(r"hf:([\w.-]+)/([\w.-]+)(?:@([\w./-]+?))?(?:/(.+))?", ref)
    if not m:
        raise UserError(f"malformed Hugging Face reference {ref!r}: use hf:owner/repo or hf:owner/repo/file.pkl")
    return f"{m.group(1)}/{m.group(2)}", m.group(3), m.group(4)


def pick_network_file(files: list[str]) -> str | None:
    """The network in a repo listing: network.json (native), else the only / latest snapshot .pkl."""
    if "network.json" in files:
        return "network.json"
    pkls = sorted(f for f in files if f.endswith(".pkl"))
    if len(pkls) == 1:
        return pkls[0]
    snapshots = [f for f in pkls if Path(f).name.startswith("network-snapshot-")]
    if snapshots:
        return snapshots[-1]
    natives = sorted(f for f in files if f.endswith(".json") and f[:-5] + ".safetensors" in files)
    return natives[0] if len(natives) == 1 else None


def _offline_hint(repo: str) -> str:
    from huggingface_hub import constants

    return (f"download it on a machine with internet (`hf download {repo}`) into the Hugging Face cache "
            f"({constants.HF_HUB_CACHE})" + (", or unset HF_HUB_OFFLINE" if constants.HF_HUB_OFFLINE else ""))


def _list_files(repo: str, revision: str | None) -> list[str]:
    """Files of the repo from the Hub, or from the local cache when offline."""
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    if not constants.HF_HUB_OFFLINE:
        try:
            return [s.rfilename for s in HfApi().model_info(repo, revision=revision).siblings or []]
        except HfHubHTTPError:
            raise  # the Hub answered (not found, gated, ...)
        except Exception:  # no connection (the HTTP client's own error types): look in the cache below
            pass
    folder = Path(snapshot_download(repo, revision=revision, local_files_only=True))
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _download(repo: str, filename: str, revision: str | None) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, filename, revision=revision))


def _resolve(repo: str, revision: str | None, filename: str | None) -> Path:
    if filename is None:
        filename = pick_network_file(_list_files(repo, revision))
        if filename is None:
            raise UserError(f"hf:{repo} holds no single network file (.pkl or network.json): name one, "
                            f"e.g. hf:{repo}/network-snapshot-010000.pkl")
    if not filename.endswith(NETWORK_SUFFIXES + (".safetensors",)):
        raise UserError(f"hf:{repo}/{filename} is not a network file (.pkl, .json or .safetensors)")
    if filename.endswith(".safetensors"):
        filename = filename[:-len(".safetensors")] + ".json"
    local = _download(repo, filename, revision)
    folder = str(Path(filename).parent) + "/" if "/" in filename else ""
    if filename.endswith(".json"):
        try:
            weights = json.loads(local.read_text()).get("weights") or Path(filename).stem + ".safetensors"
        except (ValueError, AttributeError):
            raise UserError(f"hf:{repo}/{filename} is not a network config") from None
        _download(repo, folder + weights, revision)
    else:
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        try:  # slideflow writes tile size and class names beside the pickle
            _download(repo, folder + "training_options.json", revision)
        except (EntryNotFoundError, LocalEntryNotFoundError):
            pass
    return local


def resolve_hf(ref: str) -> str:
    """Download (or find in the cache) the network file of an hf: reference; returns the local path."""
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

    repo, revision, filename = parse_hf_ref(ref)
    hf_logger = logging.getLogger("huggingface_hub")
    level = hf_logger.level
    hf_logger.setLevel(logging.ERROR)  # its retry warnings would break our one-line errors
    try:
        return str(_resolve(repo, revision, filename))
    except UserError:
        raise
    except GatedRepoError:
        raise UserError(f"{ref}: the repository is gated: accept its terms on huggingface.co and log in "
                        "(`hf auth login`)") from None
    except RepositoryNotFoundError:
        raise UserError(f"{ref}: Hugging Face repository {repo} not found (or private: log in first)") from None
    except RevisionNotFoundError:
        raise UserError(f"{ref}: revision {revision} not found in {repo}") from None
    except LocalEntryNotFoundError:
        raise UserError(f"{ref} is not in the local Hugging Face cache and could not be downloaded (offline "
                        f"or no network): {_offline_hint(repo)}") from None
    except EntryNotFoundError:
        raise UserError(f"{ref}: file not found in Hugging Face repository {repo}") from None
    except HfHubHTTPError as e:
        raise UserError(f"{ref}: Hugging Face download failed ({str(e).splitlines()[0]})") from None
    except Exception as e:  # connection errors of the HTTP client, disk errors
        raise UserError(f"{ref}: cannot reach the Hugging Face Hub or its cache ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}): {_offline_hint(repo)}") from None
    finally:
        hf_logger.setLevel(level)
