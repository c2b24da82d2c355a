#!/usr/bin/env bash
# The README's first command: sets up the local AWS emulator, deploys the
# OrderProcessor stack to it, and places two orders (SUCCESS and FAILED)
# through the API. Leaves the emulator and the stack running to play with;
# prints how to tear both down.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

tests/emulator/install.sh
cargo build --locked --quiet
endpoint="$(tests/emulator/start.sh | tail -n 1)"

# The emulator accepts any credentials; real AWS would use your profile.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$endpoint"
stepgate=target/debug/stepgate

echo "== stepgate deploy"
"$stepgate" deploy
echo
echo "== stepgate invoke (paymentStatus SUCCESS)"
"$stepgate" invoke
echo
echo "== stepgate invoke --payment-status FAILED"
"$stepgate" invoke --payment-status FAILED
cat <<EOT

The stack is deployed on the emulator at $endpoint. Next:
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$endpoint
  $stepgate plan                # nothing to change
  $stepgate destroy --yes       # remove the stack
  tests/emulator/stop.sh        # stop the emulator
EOT
