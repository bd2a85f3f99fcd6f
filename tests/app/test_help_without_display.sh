#!/bin/sh
# `peregrine --help` and `--version` answer without a display: no DISPLAY, no WAYLAND_DISPLAY,
# no QT_QPA_PLATFORM (the platform plugin would abort the app if it were loaded first). Any other
# start without a display says so and exits 1 instead of aborting.
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

for arguments in "" "--no-such-option" "--dark"; do
  # shellcheck disable=SC2086 # the empty case is no argument at all
  out=$(run_bare $arguments 2>&1)
  rc=$?
  [ "$rc" -eq 1 ] || fail "'peregrine $arguments' without a display exited with $rc (expected 1): $out"
  echo "$out" | grep -q "no display" || fail "'peregrine $arguments' without a display does not say so: $out"
done

echo "ok"
