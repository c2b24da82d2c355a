"""Builds the first article's stack as its console walkthrough does: by hand,
untagged, with the console's names and the managed policies it attaches.

    .emulator/venv/bin/python tests/adopt/console.py ENDPOINT [--clean]

First removes whatever an earlier run left under the article's names; with
--clean, only that. Then prints one JSON object: the API's id, the stage URL,
the machine's ARN and the roles made. Against the emulator only (ENDPOINT is a
loopback URL).

Where this differs from the article: the functions run nodejs18.x, not
nodejs14.x, which LocalStack 4.4 no longer accepts for new functions (AWS
Lambda blocks creating it too); both are deprecated runtimes that stepgate
replaces. Everything else is what the console makes: a `*-role-<random>`
role per function under /service-role/ with the basic execution policy,
the two Custom-* roles with the article's AWS managed policies, and a REST
API whose POST /orderprocess passes the body through to StartExecution, so
the client sends the state machine's ARN.
"""

import io
import json
import random
import string
import sys
import time
import zipfile

import boto3

REGION = "us-east-1"

FUNCTIONS = {
    "completeOrder": """exports.handler = async (event) => {
    const response = {
        message: 'Your order approved and it will be delivered soon',
        orderDetails: {
            orderId: event.orderId,
            customerName: event.customerName,
            orderDate: event.orderDate,
            orderAmount: event.orderAmount,
            status: 'Approved',
        },
    };
    return response;
};
""",
    "cancelOrder": """exports.handler = async (event) => {
    const response = {
        message: 'Your order has been cancelled',
        orderDetails: {
            orderId: event.orderId,
            customerName: event.customerName,
            orderDate: event.orderDate,
            orderAmount: event.orderAmount,
            status: 'Rejected',
        },
    };
    return response;
};
""",
}

# The definition as the Workflow Studio's code view holds it: the
# functions' ARNs written in.
DEFINITION = """{
  "Comment": "Order processing: approve or reject on the payment status",
  "StartAt": "CheckPaymentStatus",
  "States": {
    "CheckPaymentStatus": {
      "Type": "Choice",
      "Choices": [
        {
          "Variable": "$.paymentStatus",
          "StringEquals": "SUCCESS",
          "Next": "CompleteOrder"
        },
        {
          "Variable": "$.paymentStatus",
          "StringEquals": "FAILED",
          "Next": "CancelOrder"
        }
      ],
      "Default": "CancelOrder"
    },
    "CompleteOrder": {
      "Type": "Task",
      "Resource": "COMPLETE_ARN",
      "End": true
    },
    "CancelOrder": {
      "Type": "Task",
      "Resource": "CANCEL_ARN",
      "End": true
    }
  }
}"""


def trust(service):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def zipped(source):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("index.js", source)
    return buffer.getvalue()


def build(session, endpoint):
    iam = session.client("iam", endpoint_url=endpoint)
    lam = session.client("lambda", endpoint_url=endpoint)
    sfn = session.client("stepfunctions", endpoint_url=endpoint)
    apigw = session.client("apigateway", endpoint_url=endpoint)
    account = session.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"]

    roles = []
    arns = {}
    for name, source in FUNCTIONS.items():
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
        role = f"{name}-role-{suffix}"
        role_arn = iam.create_role(
            RoleName=role, Path="/service-role/", AssumeRolePolicyDocument=trust("lambda.amazonaws.com")
        )["Role"]["Arn"]
        iam.attach_role_policy(
            RoleName=role,
            PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        )
        roles.append(role)
        arns[name] = lam.create_function(
            FunctionName=name,
            Runtime="nodejs18.x",
            Handler="index.handler",
            Role=role_arn,
            Code={"ZipFile": zipped(source)},
        )["FunctionArn"]
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        # LocalStack keeps a deleted function's tags for the next function
        # of its name (AWS does not): a new function carries none.
        stale = lam.list_tags(Resource=arns[name]).get("Tags", {})
        if stale:
            lam.untag_resource(Resource=arns[name], TagKeys=list(stale))

    states_role = "Custom-AWSStepFunctionServiceRole"
    states_arn = iam.create_role(RoleName=states_role, AssumeRolePolicyDocument=trust("states.amazonaws.com"))["Role"]["Arn"]
    for policy in ["service-role/AWSLambdaRole", "CloudWatchFullAccess"]:
        iam.attach_role_policy(RoleName=states_role, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
    definition = DEFINITION.replace("COMPLETE_ARN", arns["completeOrder"]).replace("CANCEL_ARN", arns["cancelOrder"])
    machine = sfn.create_state_machine(name="OrderProcessor", definition=definition, roleArn=states_arn, type="STANDARD")[
        "stateMachineArn"
    ]
    stale = sfn.list_tags_for_resource(resourceArn=machine).get("tags", [])
    if stale:
        sfn.untag_resource(resourceArn=machine, tagKeys=[t["key"] for t in stale])

    api_role = "Custom-APIGatewayToStepFunctionsRole"
    api_role_arn = iam.create_role(RoleName=api_role, AssumeRolePolicyDocument=trust("apigateway.amazonaws.com"))["Role"][
        "Arn"
    ]
    iam.attach_role_policy(RoleName=api_role, PolicyArn="arn:aws:iam::aws:policy/AWSStepFunctionsFullAccess")

    api = apigw.create_rest_api(name="OrderProcessorAPI", endpointConfiguration={"types": ["REGIONAL"]})["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    resource = apigw.create_resource(restApiId=api, parentId=root, pathPart="orderprocess")["id"]
    apigw.put_method(restApiId=api, resourceId=resource, httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api,
        resourceId=resource,
        httpMethod="POST",
        type="AWS",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{REGION}:states:action/StartExecution",
        credentials=api_role_arn,
        passthroughBehavior="WHEN_NO_MATCH",
    )
    apigw.put_method_response(restApiId=api, resourceId=resource, httpMethod="POST", statusCode="200")
    apigw.put_integration_response(restApiId=api, resourceId=resource, httpMethod="POST", statusCode="200")
    apigw.create_deployment(restApiId=api, stageName="dev")
    url = f"{endpoint}/restapis/{api}/dev/_user_request_/orderprocess"
    return {
        "account": account,
        "api_id": api,
        "url": url,
        "state_machine_arn": machine,
        "function_roles": roles,
    }


def clean(session, endpoint):
    """Deletes what the article's names name, whoever made it."""
    iam = session.client("iam", endpoint_url=endpoint)
    lam = session.client("lambda", endpoint_url=endpoint)
    sfn = session.client("stepfunctions", endpoint_url=endpoint)
    apigw = session.client("apigateway", endpoint_url=endpoint)
    logs = session.client("logs", endpoint_url=endpoint)
    for api in apigw.get_rest_apis(limit=500)["items"]:
        if api["name"] == "OrderProcessorAPI":
            apigw.delete_rest_api(restApiId=api["id"])
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"] == "OrderProcessor":
            sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
    for group in logs.describe_log_groups(logGroupNamePrefix="/aws/vendedlogs/states/OrderProcessor")["logGroups"]:
        logs.delete_log_group(logGroupName=group["logGroupName"])
    for name in FUNCTIONS:
        try:
            lam.delete_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            pass
        for group in logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]:
            logs.delete_log_group(logGroupName=group["logGroupName"])
    prefixes = tuple(f"{n}-role-" for n in FUNCTIONS) + ("Custom-AWSStepFunctionServiceRole", "Custom-APIGatewayToStepFunctionsRole")
    for role in iam.list_roles(MaxItems=1000)["Roles"]:
        name = role["RoleName"]
        if not name.startswith(prefixes):
            continue
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)


def main():
    endpoint = sys.argv[1]
    assert endpoint.startswith("http://127.0.0.1:") or endpoint.startswith("http://localhost:"), endpoint
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    clean(session, endpoint)
    if "--clean" not in sys.argv[2:]:
        print(json.dumps(build(session, endpoint)))


if __name__ == "__main__":
    main()
