#!/bin/sh
# A small kill -9 torture run in the suite (scripts/torture.sh 1000 is the full one).
exec "$(dirname "$0")/../../scripts/torture.sh" 12 12
