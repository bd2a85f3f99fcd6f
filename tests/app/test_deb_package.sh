#!/bin/sh
# Builds the .deb with CPack from a build directory where `peregrine` is built, and checks it:
# the binary, the .desktop file, the SVG icon and the AppStream metainfo in the standard places,
# the control fields, and (where the tools are installed) desktop-file-validate and
# `appstreamcli validate --no-net` on the packaged files.
#   test_deb_package.sh <build dir>
# Exit 77 (skipped) without cpack or dpkg-deb.
set -eu
build=$1

for tool in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not installed: skipped"; exit 77; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/out" >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log" >&2
  fail "cpack -G DEB failed"
fi
deb=$(ls "$work"/out/*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "cpack wrote no .deb (log: $(cat "$work/cpack.log"))"
echo "package: $(basename "$deb")"

dpkg-deb --contents "$deb" >"$work/contents"
expect_file() {  # path, mode prefix
  grep -Eq "^$2 .* \\.$1\$" "$work/contents" || { cat "$work/contents" >&2; fail "$1 missing (or not $2)"; }
}
expect_file /usr/bin/peregrine '-rwxr-xr-x'
expect_file /usr/share/applications/io.peregrine.Peregrine.desktop '-rw-r--r--'
expect_file /usr/share/icons/hicolor/scalable/apps/peregrine.svg '-rw-r--r--'
expect_file /usr/share/metainfo/io.peregrine.Peregrine.metainfo.xml '-rw-r--r--'

dpkg-deb --info "$deb" >"$work/info"
field() { sed -n "s/^ $1: //p" "$work/info"; }
[ "$(field Package)" = peregrine ] || fail "Package is '$(field Package)'"
[ -n "$(field Version)" ] || fail "no Version"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is '$(field Architecture)'"
# dpkg-shlibdeps found the Qt widgets library the binary links (Qt 5 or Qt 6 build).
field Depends | grep -Eq 'libqt(5widgets5|6widgets6)' || fail "Depends lacks the Qt widgets library: $(field Depends)"

dpkg-deb -x "$deb" "$work/root"
head -c 4 "$work/root/usr/bin/peregrine" | grep -q 'ELF' || fail "usr/bin/peregrine is not an ELF executable"
grep -q '^Exec=peregrine' "$work/root/usr/share/applications/io.peregrine.Peregrine.desktop" ||
  fail "the .desktop file does not start peregrine"
grep -q '<svg' "$work/root/usr/share/icons/hicolor/scalable/apps/peregrine.svg" || fail "the icon is not an SVG"

# The packaged binary starts (its libraries resolve) and answers --version.
version=$(QT_QPA_PLATFORM=offscreen "$work/root/usr/bin/peregrine" --version 2>&1) ||
  fail "the packaged peregrine does not start: $version"
echo "$version" | grep -q "^peregrine $(field Version)" || fail "--version says '$version', the package $(field Version)"

# Installable here: apt resolves every dependency of the package (a simulation: nothing changes).
if command -v apt-get >/dev/null 2>&1; then
  apt-get install --simulate --no-install-recommends "$deb" >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; fail "apt-get cannot install the package"; }
  grep -q '^Inst peregrine' "$work/apt.log" || { cat "$work/apt.log" >&2; fail "apt-get would not install peregrine"; }
fi

if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate "$work/root/usr/share/applications/io.peregrine.Peregrine.desktop" ||
    fail "desktop-file-validate"
else
  echo "desktop-file-validate not installed: not run"
fi
if command -v appstreamcli >/dev/null 2>&1; then
  appstreamcli validate --no-net "$work/root/usr/share/metainfo/io.peregrine.Peregrine.metainfo.xml" ||
    fail "appstreamcli validate"
else
  echo "appstreamcli not installed: not run"
fi
echo "ok"
