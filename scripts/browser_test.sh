#!/usr/bin/env bash
# Browser test of the web page: starts `arc2face serve` with the tiny fixture models on a free port, drives
# Debian's chromium (headless) with npm playwright-core (installed into tests/browser/; no browser is ever
# downloaded), uploads fixture photos and a pose image (the fixture ControlNet is found next to the fixture
# models), runs a generation, checks the gallery and saves a screenshot.
#
#   scripts/browser_test.sh [ARC2FACE_BINARY] [SCREENSHOT_PNG]
#   (defaults: build/bin/arc2face, docs/screenshot-web.png)
#
# Exit status: 0 passed, 1 failed, 77 skipped (no chromium / node / npm; CTest reports it as skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-build/bin/arc2face}
SHOT=${2:-docs/screenshot-web.png}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

skip() { echo "SKIPPED: $*"; exit 77; }
[ -x "$CHROMIUM" ] || skip "$CHROMIUM not found (Debian package chromium; scripts/install-deps.sh installs it)"
command -v node > /dev/null || skip "node not found (Debian packages nodejs npm)"
command -v npm > /dev/null || skip "npm not found (Debian package npm)"
[ -x "$BIN" ] || { echo "error: $BIN is not built"; exit 1; }

# The driver only: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD, and playwright-core has no install step anyway.
if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  echo "installing playwright-core into tests/browser/node_modules"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

F=tests/fixtures
LOG=$(mktemp /tmp/a2f-serve-XXXXXX.log)
mkdir -p "$(dirname "$SHOT")"
SERVE_ARGS=(serve --host 127.0.0.1 --port 0 --models "$F/models" --base "$F/models/sd15"
            --antelope "$F/face/antelopev2_mini" --width 64 --height 64 --examples "$F/face/images"
            --threads 1 --shutdown-grace 5)
"$BIN" "${SERVE_ARGS[@]}" > "$LOG" 2>&1 &
SERVER_PID=$!
cleanup() {
  if kill -0 "$SERVER_PID" 2> /dev/null; then kill -TERM "$SERVER_PID" 2> /dev/null || true; fi
  rm -f "$LOG"
}
trap cleanup EXIT

URL=""
for _ in $(seq 1 600); do  # up to 60 s for the models to load
  URL=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$LOG" | head -1 | sed 's/listening on //') || true
  [ -n "$URL" ] && break
  if ! kill -0 "$SERVER_PID" 2> /dev/null; then
    echo "error: arc2face serve exited:"; cat "$LOG"; exit 1
  fi
  sleep 0.1
done
[ -n "$URL" ] || { echo "error: arc2face serve did not start:"; cat "$LOG"; exit 1; }
echo "server at $URL"

status=0
(cd tests/browser && A2F_URL="$URL" A2F_PHOTO="$ROOT/$F/face/images/s01_640x480.jpg" \
  A2F_PHOTO2="$ROOT/$F/face/images/s03_300x400.png" A2F_NOFACE="$ROOT/$F/face/images/s11_blank_320x240.png" \
  A2F_POSE="$ROOT/$F/face/images/s10_palette_320x240.png" \
  A2F_SCREENSHOT="$(cd "$ROOT" && realpath -m "$SHOT")" CHROMIUM="$CHROMIUM" node web_page.test.mjs) || status=$?

# Graceful stop on SIGTERM: the server must exit 0 within its grace period.
kill -TERM "$SERVER_PID"
stop_status=0
wait "$SERVER_PID" || stop_status=$?
if [ "$stop_status" != 0 ]; then
  echo "error: arc2face serve exited with $stop_status after SIGTERM:"; tail -20 "$LOG"; status=1
fi
if [ "$status" != 0 ]; then
  echo "server log (last 40 lines):"; tail -40 "$LOG"
  echo "FAILED"
  exit 1
fi
echo "PASSED (screenshot: $SHOT)"
