#!/bin/sh
# `peregrine --help` and `--version` answer without a display: no DISPLAY, no WAYLAND_DISPLAY,
# no QT_QPA_PLATFORM (the platform plugin would abort the app if it were loaded first).
#   test_help_without_display.sh <peregrine binary>
set -u
binary=$1
fail() { echo "FAIL: $*"; exit 1; }

run_bare() {
  env -u DISPLAY -u WAYLAND_DISPLAY -u QT_QPA_PLATFORM timeout 20 "$binary" "$@"
}

help=$(run_bare --help 2>&1)
rc=$?
echo "$help"
[ "$rc" -eq 0 ] || fail "--help exited with $rc"
echo "$help" | grep -q -- "--screenshot" || fail "--help does not list --screenshot"
echo "$help" | grep -q "Usage:" || fail "--help prints no usage line"

version=$(run_bare --version 2>&1)
rc=$?
echo "$version"
[ "$rc" -eq 0 ] || fail "--version exited with $rc"
echo "$version" | grep -q "^peregrine [0-9]" || fail "--version does not print 'peregrine <version>'"

all=$(run_bare --help-all 2>&1)
rc=$?
[ "$rc" -eq 0 ] || fail "--help-all exited with $rc"
echo "$all" | grep -q -- "--screenshot" || fail "--help-all does not list --screenshot"

echo "ok"
