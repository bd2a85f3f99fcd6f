#!/bin/sh
# `peregrine --screenshot` against a home where start-up cannot work: the app must log the reason
# at error level and exit non-zero at once, never wait on a dialog (a modal box would hang here).
#   test_startup_errors.sh <peregrine binary> <output folder>
# Cases: the database path is a folder; a symbolic link loop; its folder is read-only (skipped
# as root, whom permissions do not stop; the message is covered by test_app_storage); the demo
# model cannot be written.
set -u
binary=$1
out=$2/peregrine-startup-errors
failures=0

fail() { echo "FAIL ($case_name): $*"; failures=$((failures + 1)); }

# new_home NAME: an empty home; sets $home and $data (the app's data folder in it).
new_home() {
  case_name=$1
  home="$out/$1"
  chmod -R u+w "$home" 2>/dev/null
  rm -rf "$home"
  mkdir -p "$home/config" "$home/runtime"
  chmod 700 "$home/runtime"
  data="$home/data/Peregrine/peregrine"
}

# expect_failure PATTERN...: runs the app headless; it must end non-zero within the timeout and
# its log must hold an [error] line and every pattern.
expect_failure() {
  log="$home/log.txt"
  HOME="$home" XDG_CONFIG_HOME="$home/config" XDG_DATA_HOME="$home/data" XDG_RUNTIME_DIR="$home/runtime" \
    QT_QPA_PLATFORM=offscreen timeout 30 "$binary" --screenshot "$home/shot.png" >"$log" 2>&1
  rc=$?
  cat "$log"
  if [ "$rc" -eq 124 ]; then fail "still running after 30 s (waiting on a dialog?)"; return; fi
  [ "$rc" -ne 0 ] || fail "exited with 0"
  [ "$rc" -lt 128 ] || fail "killed by signal $((rc - 128))"
  grep -q "\[error\]" "$log" || fail "nothing logged at error level"
  for pattern in "$@"; do
    grep -q -- "$pattern" "$log" || fail "the log does not say '$pattern'"
  done
  [ ! -e "$home/shot.png" ] || fail "a screenshot was saved although start-up failed"
}

new_home database-is-a-folder
mkdir -p "$data/conversations.db"
expect_failure "conversations.db is a folder"

new_home symlink-loop
mkdir -p "$data"
ln -s conversations.db "$data/conversations.db"
expect_failure "symbolic link loop"

new_home read-only-folder
mkdir -p "$data"
chmod 555 "$data"
if [ "$(id -u)" -eq 0 ]; then
  echo "read-only-folder: skipped (running as root, which writes into read-only folders)"
else
  expect_failure "read-only" "$data"
fi
chmod 755 "$data"

new_home demo-model-not-writable
mkdir -p "$data"
echo "not a folder" >"$data/models"  # the models folder cannot be made
expect_failure "demo model" "$data/models"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "ok"
