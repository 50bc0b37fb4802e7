#!/usr/bin/env bash
# Build the Debian base image the docker test builds Layerwise on, once: a minimal bookworm with
# Debian's own python3 (Docker Hub, and so python:3.12-slim, is out of reach on the CI machines).
#   tests/docker/build-base-image.sh [TAG]     (default layerwise-base:bookworm-1)
# Bump the tag's number when this script changes, so cached images are rebuilt.
# Needs root, debootstrap and a running Docker daemon. Uses this machine's Debian mirror and adds
# this machine's local CAs (/usr/local/share/ca-certificates, e.g. an egress proxy's) to the image, as
# a site's own base image would, so pip inside `docker build` can reach PyPI the way the host does.
set -euo pipefail

tag="${1:-layerwise-base:bookworm-1}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists"
  exit 0
fi

# The first deb.debian.org-style URI of this machine's apt sources (deb822 or one-line format).
mirror="$(grep -hsoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+' \
            /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
          | grep -oE 'https?://[^[:space:]]+' | grep -vE 'security|nodesource|google' | head -n1 || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

root="$(mktemp -d /tmp/layerwise-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$tag" >/dev/null
echo "built base image $tag"
