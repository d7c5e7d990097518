#!/bin/sh
# Make sure Debian's Chromium is installed: the browser tests (tests/test_browser_*.py) drive it
# with Playwright, and Playwright's own browser download does not work on these machines.
# `make test` runs this first. Installs with apt-get as root, else through sudo; says
# plainly what to do when neither is possible (the browser tests then fail, never skip).
set -eu
CHROMIUM="${LASTKNOWN_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0

if [ "$(id -u)" = 0 ]; then
    AS_ROOT=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    AS_ROOT="sudo -n"
else
    echo "ensure_chromium: $CHROMIUM is missing and this user can neither install" \
         "packages (not root) nor use sudo without a password." >&2
    echo "Install it once as root: apt-get install -y chromium   (Debian's package)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM is missing and there is no apt-get here;" \
         "install Chromium and set LASTKNOWN_CHROMIUM to its path." >&2
    exit 1
fi
echo "ensure_chromium: installing Debian's chromium for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: update and try again once.
$AS_ROOT apt-get install -y -q chromium \
    || { $AS_ROOT apt-get update -q && $AS_ROOT apt-get install -y -q chromium; }
[ -x "$CHROMIUM" ] || { echo "ensure_chromium: installed, but $CHROMIUM is still missing" >&2
                        exit 1; }
