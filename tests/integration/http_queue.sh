#!/bin/sh
# The HTTP engine's admission queue: with a soft descriptor limit of 64 the engine admits
# at most 16 transfers into libcurl at once, so test_http's 1,000 concurrent transfers (and
# every timeout, cancel and streaming case) run through the queue.
set -u
: "${BUILD:?}"
ulimit -Sn 64 || { echo "cannot lower the descriptor limit"; echo "0 passed, 1 failed"; exit 1; }
exec "$BUILD/tests/test_http"
