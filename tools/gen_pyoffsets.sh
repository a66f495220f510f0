#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Generate the CPython layout table of user/pyoffsets.c from the internal
# headers of the pyenv CPythons: one row per supported minor, from its newest
# installed patch release.
#
#   tools/gen_pyoffsets.sh            print the table body on stdout
#   tools/gen_pyoffsets.sh --update   rewrite it in place between the
#                                     BEGIN/END GENERATED markers
#
# Every supported minor must be installed (pyenv install 3.X): a missing one
# is an error, not a silently dropped row.
set -eu

MINORS="8 9 10 11 12 13"

root=$(cd "$(dirname "$0")/.." && pwd)
pyenv=${PYENV_ROOT:-$HOME/.pyenv}
cc=${CC:-cc}
update=0

case ${1:-} in
--update) update=1 ;;
"") ;;
*) echo "usage: $0 [--update]" >&2; exit 1 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Newest installed 3.MINOR.PATCH (plain releases only: no 3.13t, no -dev).
newest() {
	ls "$pyenv/versions" 2>/dev/null | grep -E "^3\.$1\.[0-9]+\$" | sort -t. -k3,3n | tail -n 1
}

# gen_row VERSION: the generator's output for one installed version.
gen_row() {
	ver=$1
	mm=${ver%.*}
	inc=$pyenv/versions/$ver/include/python$mm
	if [ ! -d "$inc/internal" ]; then
		echo "gen_pyoffsets: no internal headers in $inc" >&2
		return 1
	fi
	$cc -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror -DPy_BUILD_CORE \
		-I"$inc" -I"$inc/internal" -I"$root/user" -I"$root/bpf" \
		"$root/tools/gen_pyoffsets.c" "$root/user/pyoffsets.c" -o "$tmp/gen-$ver" &&
		"$tmp/gen-$ver"
}

for minor in $MINORS; do
	ver=$(newest "$minor")
	if [ -z "$ver" ]; then
		echo "gen_pyoffsets: CPython 3.$minor is not installed under $pyenv/versions" \
			"(pyenv install 3.$minor)" >&2
		exit 1
	fi
	printf '\t/* 3.%s: generated from the %s headers */\n' "$minor" "$ver"
	gen_row "$ver"
done >"$tmp/table"

if [ "$update" -eq 0 ]; then
	cat "$tmp/table"
	exit 0
fi

src=$root/user/pyoffsets.c
begin='/* BEGIN GENERATED'
end='/* END GENERATED */'
if [ "$(grep -c -F "$begin" "$src")" -ne 1 ] || [ "$(grep -c -F "$end" "$src")" -ne 1 ]; then
	echo "gen_pyoffsets: $src must hold one BEGIN GENERATED and one END GENERATED marker" >&2
	exit 1
fi
awk -v begin="$begin" -v end="$end" -v table="$tmp/table" '
	index($0, begin) == 1 {
		print
		while ((getline line < table) > 0)
			print line
		skip = 1
		next
	}
	index($0, end) == 1 { skip = 0 }
	!skip { print }
' "$src" >"$tmp/pyoffsets.c"
cat "$tmp/pyoffsets.c" >"$src"
echo "gen_pyoffsets: updated $src" >&2
