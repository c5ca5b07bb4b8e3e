"""Model references, one resolver for GAN networks and classifiers: `demo`, `hf:owner/repo[/path][@rev]`, paths.

- `demo`: the bundled demo models (package data in synthhist/demo/models/).
- `hf:owner/repo[/path][@revision]` (also `hf:owner/repo@revision[/path]`): downloaded through the Hugging Face
  cache, or found there offline. For a network, path names the file (default: the repo's only network);
  for a classifier, the model folder inside the repo (default: the repo root). `path` may not leave the repo
  (`..` is refused).
- anything else: a local path (`~` expanded). Loaders open files at their real paths (symlinks followed) and
  report them (synthhist.gan.checkpoint.network_files), so callers can confine them to allowed folders.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import click

from synthhist.errors import UserError

DEMO = "demo"
KINDS = ("network", "classifier")
DEMO_MODELS = Path(__file__).resolve().parent / "demo" / "models"
NETWORK_SUFFIXES = (".pkl", ".json", ".safetensors")


def demo_path(kind: str) -> Path:
    """The bundled demo GAN (native config) or classifier (model folder)."""
    return DEMO_MODELS / "gan" / "network.json" if kind == "network" else DEMO_MODELS / "classifier"


def or_demo(ref: str | None, option: str) -> str:
    """ref, or 'demo' with one line on stderr saying so when the option (network|classifier) was left out."""
    if ref is not None:
        return ref
    click.echo(f"Using the bundled demo {option} (--{option} demo); pass --{option} to use your own.", err=True)
    return DEMO


def resolve(ref: str | Path, kind: str) -> Path:
    """Local path of a model reference of kind 'network' or 'classifier' (downloading hf: references)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    ref = str(ref)
    if ref == DEMO:
        return demo_path(kind)
    if ref.startswith("hf:"):
        return _resolve_hf(ref, kind)
    path = Path(ref).expanduser()
    if not path.exists():
        raise UserError(f"{kind} not found: {path}")
    return path


# ------------------------------------------------------------------------------------------------ hf:

def parse_hf_ref(ref: str) -> tuple[str, str | None, str | None]:
    """'hf:owner/repo/dir/file.pkl@rev' (or 'hf:owner/repo@rev/dir/file.pkl') -> ('owner/repo', 'rev',
    'dir/file.pkl'); revision and path may be None."""
    m = re.fullmatch(r"hf:([\w.-]+)/([\w.-]+)(?:@([\w.-]+))?(?:/([^@]*))?(?:@([\w./-]+))?", ref)
    if not m or (m.group(3) and m.group(5)) or m.group(1) in (".", "..") or m.group(2) in (".", ".."):
        raise UserError(f"malformed Hugging Face reference {ref!r}: use hf:owner/repo[/path][@revision]")
    revision = m.group(3) or m.group(5)
    if revision is not None and ".." in revision.split("/"):
        raise UserError(f"{ref}: malformed revision {revision!r}")
    path = (m.group(4) or "").strip("/") or None
    if path is not None and any(p in ("", ".", "..") or "\\" in p for p in path.split("/")):
        raise UserError(f"{ref}: the path inside the repository may not contain '..', '.' or empty parts")
    return f"{m.group(1)}/{m.group(2)}", revision, path


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


def _offline_hint(repo: str, revision: str | None) -> str:
    from huggingface_hub import constants

    rev = f" --revision {revision}" if revision else ""
    return (f"download it on a machine with internet (`hf download {repo}{rev}`, or in Python "
            f"`huggingface_hub.snapshot_download('{repo}')`) into the Hugging Face cache ({constants.HF_HUB_CACHE})"
            + (", or unset HF_HUB_OFFLINE" if constants.HF_HUB_OFFLINE else ""))


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


def _network_file(repo: str, revision: str | None, filename: str | None) -> Path:
    """Download a network file and what it needs beside it (weights, training_options.json)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    if filename is None:
        filename = pick_network_file(_list_files(repo, revision))
        if filename is None:
            raise UserError(f"hf:{repo} holds no single network file (.pkl or network.json): name one, "
                            f"e.g. hf:{repo}/network-snapshot-010000.pkl")
    if not filename.endswith(NETWORK_SUFFIXES):
        raise UserError(f"hf:{repo}/{filename} is not a network file (.pkl, .json or .safetensors)")
    if filename.endswith(".safetensors"):
        filename = filename[:-len(".safetensors")] + ".json"
    local = Path(hf_hub_download(repo, filename, revision=revision))
    folder = str(Path(filename).parent) + "/" if "/" in filename else ""
    if filename.endswith(".json"):
        try:
            weights = json.loads(local.read_text()).get("weights") or Path(filename).stem + ".safetensors"
        except (ValueError, AttributeError, RecursionError):
            raise UserError(f"hf:{repo}/{filename} is not a network config") from None
        if not isinstance(weights, str) or Path(weights).name != weights or not weights.endswith(".safetensors"):
            raise UserError(f"hf:{repo}/{filename}: weights must name a .safetensors file beside it")
        hf_hub_download(repo, folder + weights, revision=revision)
    else:
        try:  # slideflow writes tile size and class names beside the pickle
            hf_hub_download(repo, folder + "training_options.json", revision=revision)
        except (EntryNotFoundError, LocalEntryNotFoundError):
            pass
    return local


def _classifier_folder(repo: str, revision: str | None, subfolder: str | None) -> Path:
    from huggingface_hub import snapshot_download

    root = Path(snapshot_download(repo, revision=revision))
    path = root.joinpath(*subfolder.split("/")) if subfolder else root
    if not path.exists():
        raise UserError(f"hf:{repo}: no {subfolder} in the repository")
    return path


def _resolve_hf(ref: str, kind: str) -> Path:
    """Download (or find in the cache) what an hf: reference names; one-line UserError on every failure."""
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

    repo, revision, path = parse_hf_ref(ref)
    hf_logger = logging.getLogger("huggingface_hub")
    level = hf_logger.level
    hf_logger.setLevel(logging.ERROR)  # its retry warnings would break our one-line errors
    try:
        if kind == "network":
            return _network_file(repo, revision, path)
        return _classifier_folder(repo, revision, path)
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
        raise UserError(f"{ref} is not in the local Hugging Face cache and could not be downloaded from the "
                        f"Hugging Face Hub (offline or no network): {_offline_hint(repo, revision)}") from None
    except EntryNotFoundError:
        raise UserError(f"{ref}: file not found in Hugging Face repository {repo}") from None
    except HfHubHTTPError as e:
        raise UserError(f"{ref}: Hugging Face download failed ({str(e).splitlines()[0] if str(e) else ''})") from None
    except Exception as e:  # connection errors of the HTTP client, disk errors
        raise UserError(f"{ref}: cannot reach the Hugging Face Hub or its cache ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200] if str(e) else ''}): {_offline_hint(repo, revision)}") from None
    finally:
        hf_logger.setLevel(level)
