"""Allowed folders: the only places the page may load networks and classifiers from.

A path from the page is resolved to its real location (symlinks followed, `..` collapsed) and accepted
only if that location lies inside one of the allowed folders, so neither `..` nor a symlink can escape.
"""

from __future__ import annotations

import os
from pathlib import Path

from synthhist.errors import UserError

MAX_DEPTH = 4  # folder levels scanned below each allowed folder
MAX_ENTRIES = 500  # candidates listed per kind


class AllowedFolders:
    """A list of folders; resolves and lists files strictly inside them."""

    def __init__(self, roots: list[str | Path]):
        if not roots:
            raise UserError("no data folder given")
        self.roots = []
        for r in roots:
            p = Path(r).expanduser()
            if not p.is_dir():
                raise UserError(f"data folder {r} does not exist or is not a folder")
            self.roots.append(p.resolve())

    def resolve(self, path: str) -> Path:
        """Real path of `path` (absolute, or relative to the first folder); UserError unless inside a folder."""
        if not path or "\x00" in path or len(path) > 4096:
            raise UserError("empty or malformed path")
        if ".." in Path(path).parts:
            raise UserError(f"path {path!r} contains '..': choose a file inside the data folders")
        p = Path(path)
        if not p.is_absolute():
            p = self.roots[0] / p
        real = Path(os.path.realpath(p))
        if not self._inside(real):
            raise UserError(f"path {path!r} is outside the data folders")
        if not real.exists():
            raise UserError(f"path {path!r} does not exist")
        for f in _opened_with(real):  # a model folder's files and a file's companions: no symlink escapes
            if not self._inside(Path(os.path.realpath(f))):
                raise UserError(f"{path!r}: {f.name} links outside the data folders")
        return real

    def _inside(self, real: Path) -> bool:
        return any(real == root or real.is_relative_to(root) for root in self.roots)

    def candidates(self) -> dict[str, list[str]]:
        """Networks (*.pkl, native network folders) and classifiers (folders with params.json) under the folders."""
        networks: list[str] = []
        classifiers: list[str] = []
        for root in self.roots:
            for folder, dirs, names in _walk(root):
                if "params.json" in names and len(classifiers) < MAX_ENTRIES:
                    classifiers.append(str(folder))
                    dirs[:] = []  # a classifier's own subfolders (SavedModel variables, ...) hold nothing else
                    continue
                if any(n.endswith(".safetensors") for n in names) and len(networks) < MAX_ENTRIES:
                    networks.append(str(folder))
                networks.extend(str(folder / n) for n in sorted(names) if n.endswith(".pkl"))
                del networks[MAX_ENTRIES:]
        return {"networks": networks, "classifiers": classifiers}


def _opened_with(real: Path) -> list[Path]:
    """Files a loader may open for real: everything in a model folder, or a file's companion files."""
    if real.is_dir():
        found = [] if (real / "params.json").exists() else [real.parent / "params.json"]  # read when none inside
        for folder, dirs, names in os.walk(real, followlinks=False):
            found += [Path(folder) / n for n in names + dirs]
            if len(found) > 10 * MAX_ENTRIES:
                raise UserError(f"{real} holds too many files to be a model folder")
    else:
        found = [real.with_suffix(".json"), real.with_suffix(".safetensors"), real.parent / "training_options.json"]
    return [f for f in found if f.is_symlink() or f.exists()]


def _walk(root: Path):
    """os.walk below root to MAX_DEPTH levels, skipping hidden folders and symlinks leaving root."""
    for folder, dirs, names in os.walk(root, followlinks=False):
        folder = Path(folder)
        depth = len(folder.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and depth < MAX_DEPTH)
        yield folder, dirs, [n for n in names if not n.startswith(".")]
