#!/bin/sh
# Entry point of the Layerwise image: make the data directory writable for the layerwise user, then
# run the command (default `layerwise serve`) as that user.
#
# Docker creates a bind-mount source that does not exist yet (./layerwise-data in compose.example.yaml)
# as root:root, which uid 1000 cannot write. Started as root (the image's default), we give the data
# directory to layerwise and drop root with setpriv (util-linux, in every Debian base) -- the pattern
# of the official postgres and redis images. A named volume starts as a copy of the image's /data and
# is already ours, so nothing changes there. Started as another user (`--user`), we cannot and need
# not change anything: the command runs as that user.
set -eu

data="${LAYERWISE_DATA_DIR:-/data}"
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$data"
    # Only what is not ours yet: on later starts this touches nothing, however large the directory.
    find "$data" \! -user layerwise -exec chown -h layerwise:layerwise {} +   # -h: a link, not its target
    export HOME=/data
    exec setpriv --reuid=layerwise --regid=layerwise --init-groups --no-new-privs -- "$@"
fi
exec "$@"
