#!/usr/bin/env bash
# The OrderProcessor stack with nothing but the aws CLI: the peer of `stepgate deploy` and
# `stepgate destroy` that tests/bench/peers.py measures. A plain, sequential script, as one
# would write it by hand: every resource is created if missing and updated otherwise, without
# diffing, so a second deploy repeats every update.
#
#   stack.sh deploy   BASE SRC    # create or update everything; prints the API id last
#   stack.sh teardown BASE        # delete everything, in reverse order
#
# BASE names the resources as stepgate does for `{stack}-{stage}`: BASE-completeOrder,
# BASE-{region}-lambda, /aws/lambda/BASE-completeOrder, BASE-OrderProcessor,
# BASE-OrderProcessorAPI (stage "dev"). SRC is a directory with lambdas/, definitions/ and
# policies/ laid out as in the repository. The CLI reads AWS_ENDPOINT_URL, AWS_DEFAULT_REGION
# (aws CLI v1 ignores AWS_REGION) and the credentials from the environment; without
# AWS_ENDPOINT_URL it runs unchanged against AWS.
set -euo pipefail

cmd="${1:?usage: stack.sh deploy BASE SRC | teardown BASE}"
base="${2:?BASE missing}"
region="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
stage=dev
functions=(completeOrder cancelOrder)
retention=14

account="$(aws sts get-caller-identity --query Account --output text)"
role() { echo "$base-$region-$1"; }
role_arn() { echo "arn:aws:iam::$account:role/$(role "$1")"; }
fn_arn() { echo "arn:aws:lambda:$region:$account:function:$base-$1"; }
sm_name="$base-OrderProcessor"
sm_arn="arn:aws:states:$region:$account:stateMachine:$sm_name"
sm_log="/aws/vendedlogs/states/$sm_name"
lg_arn() { echo "arn:aws:logs:$region:$account:log-group:$1"; }
api_name="$base-OrderProcessorAPI"

# Runs "$@"; an error whose message contains $1 counts as success (e.g. already exists).
tolerate() {
  local code="$1" err
  shift
  if ! err="$("$@" 2>&1 >/dev/null)"; then
    [[ "$err" == *"$code"* ]] || { echo "$err" >&2; return 1; }
  fi
}

# Runs "$@" until it stops failing with $1 (IAM propagation: a new role is not usable at
# once on AWS), at most 30 times a second apart.
retry_on() {
  local code="$1" err i
  shift
  for ((i = 1; ; i++)); do
    if err="$("$@" 2>&1 >/dev/null)"; then return 0; fi
    if [[ "$err" != *"$code"* || $i -ge 30 ]]; then echo "$err" >&2; return 1; fi
    sleep 1
  done
}

# The placeholders of definitions/ and policies/, as stepgate fills them in.
render() {
  sed -e "s|\${completeOrderArn}|$(fn_arn completeOrder)|g" \
      -e "s|\${cancelOrderArn}|$(fn_arn cancelOrder)|g" \
      -e "s|\${completeOrderLogGroupArn}|$(lg_arn "/aws/lambda/$base-completeOrder")|g" \
      -e "s|\${cancelOrderLogGroupArn}|$(lg_arn "/aws/lambda/$base-cancelOrder")|g" \
      -e "s|\${stateMachineArn}|$sm_arn|g" \
      -e "s|\${stateMachineLogGroupArn}|$(lg_arn "$sm_log")|g" \
      -e "s|\${region}|$region|g" -e "s|\${account}|$account|g" -e "s|\${partition}|aws|g" "$1"
}

api_id() {
  local id
  id="$(aws apigateway get-rest-apis --query "items[?name=='$api_name'].id | [0]" --output text)"
  [[ "$id" == "None" ]] || echo "$id"
}

deploy() {
  local src="${1:?SRC missing}" tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN

  # Log groups.
  local lg
  for lg in "/aws/lambda/$base-completeOrder" "/aws/lambda/$base-cancelOrder" "$sm_log"; do
    tolerate ResourceAlreadyExistsException aws logs create-log-group --log-group-name "$lg"
    aws logs put-retention-policy --log-group-name "$lg" --retention-in-days "$retention"
  done

  # Roles with their inline policies.
  local p
  for p in lambda states apigateway; do
    if aws iam get-role --role-name "$(role "$p")" >/dev/null 2>&1; then
      aws iam update-assume-role-policy --role-name "$(role "$p")" \
        --policy-document "file://$src/policies/$p-trust.json"
    else
      aws iam create-role --role-name "$(role "$p")" \
        --assume-role-policy-document "file://$src/policies/$p-trust.json" >/dev/null
    fi
    render "$src/policies/$p-permissions.json" >"$tmp/$p-permissions.json"
    aws iam put-role-policy --role-name "$(role "$p")" --policy-name "$base-$p" \
      --policy-document "file://$tmp/$p-permissions.json"
  done

  # Functions: the code zipped without tests, then created or updated.
  local f
  for f in "${functions[@]}"; do
    (cd "$src/lambdas/$f" && zip -q -r "$tmp/$f.zip" . -x '*.test.js')
    if aws lambda get-function --function-name "$base-$f" >/dev/null 2>&1; then
      aws lambda update-function-code --function-name "$base-$f" \
        --zip-file "fileb://$tmp/$f.zip" >/dev/null
      aws lambda wait function-updated-v2 --function-name "$base-$f"
      retry_on "cannot be assumed" aws lambda update-function-configuration \
        --function-name "$base-$f" --role "$(role_arn lambda)" --handler "index.$f" \
        --runtime nodejs22.x --memory-size 128 --timeout 10
      aws lambda wait function-updated-v2 --function-name "$base-$f"
    else
      retry_on "cannot be assumed" aws lambda create-function --function-name "$base-$f" \
        --role "$(role_arn lambda)" --handler "index.$f" --runtime nodejs22.x \
        --memory-size 128 --timeout 10 --zip-file "fileb://$tmp/$f.zip"
      aws lambda wait function-active-v2 --function-name "$base-$f"
    fi
  done

  # State machine, logging ALL to its log group.
  render "$src/definitions/OrderProcessor.asl.json" >"$tmp/definition.json"
  local logging
  logging="{\"level\":\"ALL\",\"includeExecutionData\":true,\"destinations\":[{\"cloudWatchLogsLogGroup\":{\"logGroupArn\":\"$(lg_arn "$sm_log"):*\"}}]}"
  if aws stepfunctions describe-state-machine --state-machine-arn "$sm_arn" >/dev/null 2>&1; then
    retry_on AccessDeniedException aws stepfunctions update-state-machine \
      --state-machine-arn "$sm_arn" --definition "file://$tmp/definition.json" \
      --role-arn "$(role_arn states)" --logging-configuration "$logging"
  else
    retry_on AccessDeniedException aws stepfunctions create-state-machine --name "$sm_name" \
      --type STANDARD --definition "file://$tmp/definition.json" \
      --role-arn "$(role_arn states)" --logging-configuration "$logging"
  fi

  # REST API: POST /orderprocess starts an execution of the pinned state machine; OPTIONS
  # answers the CORS preflight.
  local id root res
  id="$(api_id)"
  if [[ -z "$id" ]]; then
    id="$(aws apigateway create-rest-api --name "$api_name" \
      --endpoint-configuration types=REGIONAL --query id --output text)"
    root="$(aws apigateway get-resources --rest-api-id "$id" \
      --query "items[?path=='/'].id | [0]" --output text)"
    res="$(aws apigateway create-resource --rest-api-id "$id" --parent-id "$root" \
      --path-part orderprocess --query id --output text)"
    local m
    for m in POST OPTIONS; do
      aws apigateway put-method --rest-api-id "$id" --resource-id "$res" --http-method "$m" \
        --authorization-type NONE >/dev/null
    done
    for code in 200 400; do
      aws apigateway put-method-response --rest-api-id "$id" --resource-id "$res" \
        --http-method POST --status-code "$code" \
        --response-parameters method.response.header.Access-Control-Allow-Origin=false \
        --response-models application/json=Empty >/dev/null
    done
    aws apigateway put-method-response --rest-api-id "$id" --resource-id "$res" \
      --http-method OPTIONS --status-code 200 \
      --response-parameters "method.response.header.Access-Control-Allow-Headers=false,method.response.header.Access-Control-Allow-Methods=false,method.response.header.Access-Control-Allow-Origin=false" \
      --response-models application/json=Empty >/dev/null
  else
    res="$(aws apigateway get-resources --rest-api-id "$id" \
      --query "items[?path=='/orderprocess'].id | [0]" --output text)"
  fi
  # Integrations are put every time (a PUT replaces), so a changed template or role applies.
  # The mapping template pins the state machine: a client sends only the order. As stepgate's.
  local template
  read -r -d '' template <<'EOT' || true
{
  "stateMachineArn": "@SM_ARN@",
  "input": "$util.escapeJavaScript($input.json('$')).replaceAll("\\'","'")"
}
EOT
  template="${template//@SM_ARN@/$sm_arn}"
  jq -n --arg t "$template" '{"application/json": $t}' >"$tmp/post-template.json"
  aws apigateway put-integration --rest-api-id "$id" --resource-id "$res" --http-method POST \
    --type AWS --integration-http-method POST \
    --uri "arn:aws:apigateway:$region:states:action/StartExecution" \
    --credentials "$(role_arn apigateway)" --passthrough-behavior NEVER \
    --request-templates "file://$tmp/post-template.json" >/dev/null
  aws apigateway put-integration-response --rest-api-id "$id" --resource-id "$res" \
    --http-method POST --status-code 200 \
    --response-parameters "{\"method.response.header.Access-Control-Allow-Origin\":\"'*'\"}" >/dev/null
  aws apigateway put-integration-response --rest-api-id "$id" --resource-id "$res" \
    --http-method POST --status-code 400 --selection-pattern '4\d{2}' \
    --response-parameters "{\"method.response.header.Access-Control-Allow-Origin\":\"'*'\"}" >/dev/null
  aws apigateway put-integration --rest-api-id "$id" --resource-id "$res" --http-method OPTIONS \
    --type MOCK --passthrough-behavior WHEN_NO_MATCH \
    --request-templates '{"application/json":"{\"statusCode\": 200}"}' >/dev/null
  aws apigateway put-integration-response --rest-api-id "$id" --resource-id "$res" \
    --http-method OPTIONS --status-code 200 \
    --response-parameters "{\"method.response.header.Access-Control-Allow-Headers\":\"'Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token'\",\"method.response.header.Access-Control-Allow-Methods\":\"'OPTIONS,POST'\",\"method.response.header.Access-Control-Allow-Origin\":\"'*'\"}" >/dev/null

  # A new deployment to the stage (creates the stage the first time).
  aws apigateway create-deployment --rest-api-id "$id" --stage-name "$stage" >/dev/null
  echo "$id"
}

teardown() {
  local id f p lg
  id="$(api_id)"
  [[ -z "$id" ]] || aws apigateway delete-rest-api --rest-api-id "$id"
  tolerate StateMachineDoesNotExist aws stepfunctions delete-state-machine --state-machine-arn "$sm_arn"
  for f in "${functions[@]}"; do
    tolerate ResourceNotFoundException aws lambda delete-function --function-name "$base-$f"
  done
  for lg in "/aws/lambda/$base-completeOrder" "/aws/lambda/$base-cancelOrder" "$sm_log"; do
    tolerate ResourceNotFoundException aws logs delete-log-group --log-group-name "$lg"
  done
  for p in lambda states apigateway; do
    tolerate NoSuchEntity aws iam delete-role-policy --role-name "$(role "$p")" --policy-name "$base-$p"
    tolerate NoSuchEntity aws iam delete-role --role-name "$(role "$p")"
  done
}

case "$cmd" in
  deploy) deploy "${3:-}" ;;
  teardown) teardown ;;
  *) echo "usage: stack.sh deploy BASE SRC | teardown BASE" >&2; exit 1 ;;
esac
