#!/bin/sh
# Allocation-failure torture (issue: internals): fail the first allocation at every call site
# that a support run, an approval resume, a schema check and an HTTP run reach, one site per
# process, and check each outcome: no crash, no sanitizer report (leaks included, in the ASan
# build), exit 0 or a documented code with a reason, an intact database, and every run
# finished by a later resume or failed with its reason. scripts/alloc-torture.sh --all fails
# every allocation in turn instead (long).
cd "$(dirname "$0")/../.." || exit 1
exec scripts/alloc-torture.sh --sites --binary "${AGENTD:-$PWD/agentd}"
