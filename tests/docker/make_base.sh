#!/bin/sh
# Make a local Debian base image with Python 3.11, venv and pip, for machines that cannot
# pull python:3.11-slim from Docker Hub (see docs/docker.md). Needs root, debootstrap and
# podman (for `podman import`); takes about a minute and a half, once per machine.
#
#   tests/docker/make_base.sh [IMAGE]      # default IMAGE: localhost/debian-py:bookworm
set -eu
image="${1:-localhost/debian-py:bookworm}"
suite="${DEBIAN_SUITE:-bookworm}"
if podman image exists "$image" 2>/dev/null; then
    echo "$image already exists"
    exit 0
fi
rootfs="$(mktemp -d "${TMPDIR:-/tmp}/forge-base.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$suite" "$rootfs"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import - "$image"
echo "made $image"
