#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Install what building and testing pymemleak needs from Debian's packages,
# only when something is missing (idempotent). Run as root (make demo and
# make test call it).
set -eu

PKGS="libbpf-dev bpftool clang llvm libelf-dev zlib1g-dev libcap-dev libcmocka-dev pkg-config
libcapstone-dev python3.11 make gcc chromium chromium-driver"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run as root (sudo make ...) to install them, or: sudo apt-get install$missing" >&2
	exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
