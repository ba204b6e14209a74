#!/usr/bin/env bash
# copy_worktree.sh DEST: the working tree (tracked and untracked files, not ignored ones) copied into
# DEST, for a build of its own (make check-cuda-build, make peers) whose objects never mix with the
# checkout's in-place build. DEST's old files go, except its build/ folder; files keep their times
# (cp -p), so that ninja there recompiles only what changed since the last copy. Run from the root.
set -euo pipefail
dest=$1
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done |
    xargs -0 cp -p --parents -t "$dest"
