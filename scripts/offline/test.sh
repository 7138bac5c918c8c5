#!/usr/bin/env bash
# The offline bundle's tests (engine, model, io, eval), one process per file like uvu's CLI, with
# the summary line CI reads: "N passed, N failed". Run from the checkout the bundle sits in.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
passed=0; failed=0
for file in "$bundle"/t/*.test.mjs; do
  log=$("$node" "$file" 2>&1); status=$?
  total=$(grep -o 'Total: *[0-9]*' <<< "$log" | grep -o '[0-9]*$' || echo 0)
  ok=$(grep -o 'Passed: *[0-9]*' <<< "$log" | grep -o '[0-9]*$' || echo 0)
  # a file that dies before uvu's summary counts as one failure
  bad=$(( total - ok )); [ $status != 0 ] && [ $bad = 0 ] && bad=1
  passed=$((passed + ok)); failed=$((failed + bad))
  if [ $bad = 0 ]; then echo "ok   $(basename "$file") ($ok)"; else echo "FAIL $(basename "$file")"; grep -v '^Warning' <<< "$log" | tail -30; fi
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]
