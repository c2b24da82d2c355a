//! The emulator really runs Lambda code: functions made from small Node.js handlers (zipped in
//! memory) become Active, Invoke returns what the handler computed, handler errors and timeouts come
//! back as function errors as on AWS, and a Step Functions Task state gets the function's result.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime, State};
use aws_sdk_sfn::types::{ExecutionStatus, StateMachineType};
use serde_json::{json, Value};

/// Greets by upper-cased name; the result depends on the event and on the context.
const GREETER: &str = r#"
exports.handler = async (event, context) => ({
  greeting: `Hello, ${event.name.toUpperCase()}!`,
  length: event.name.length,
  functionName: context.functionName,
});
"#;

const THROWER: &str = r#"
exports.handler = async (event) => {
  throw new Error(`order ${event.orderId} rejected`);
};
"#;

const SLEEPER: &str = r#"
exports.handler = async () => {
  await new Promise((resolve) => setTimeout(resolve, 3000));
  return "woke up";
};
"#;

fn trust_policy(service: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
    .to_string()
}

/// A zip archive holding `index.js`, built in memory.
fn zip_index_js(source: &str) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("index.js", zip::write::SimpleFileOptions::default())?;
    zip.write_all(source.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

/// Clients for one test, and the IAM role its functions run as.
struct Fixture {
    iam: aws_sdk_iam::Client,
    lambda: aws_sdk_lambda::Client,
    role_name: String,
    role_arn: String,
}

impl Fixture {
    async fn new() -> Result<Self> {
        let config = common::sdk_config().await;
        let iam = aws_sdk_iam::Client::new(&config);
        let role_name = common::unique("executor-role-");
        let role_arn = create_role(&iam, &role_name, "lambda.amazonaws.com").await?;
        Ok(Self {
            iam,
            lambda: aws_sdk_lambda::Client::new(&config),
            role_name,
            role_arn,
        })
    }

    /// Creates a nodejs20.x function from `source` and waits (bounded) until it is Active.
    async fn create_function(
        &self,
        name: &str,
        source: &str,
        timeout_seconds: i32,
    ) -> Result<String> {
        let created = self
            .lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Nodejs20x)
            .handler("index.handler")
            .role(&self.role_arn)
            .timeout(timeout_seconds)
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(zip_index_js(source)?))
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("CreateFunction {name}"))?;
        let arn = created
            .function_arn()
            .context("CreateFunction returned no ARN")?
            .to_string();

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let config = self
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await?;
            match config.state() {
                Some(State::Active) => return Ok(arn),
                Some(State::Failed) => bail!("function {name} failed: {:?}", config.state_reason()),
                state if Instant::now() > deadline => {
                    bail!("function {name} still {state:?} after 60 s")
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Invokes synchronously; returns the FunctionError (if any) and the JSON payload.
    async fn invoke(&self, name: &str, event: &Value) -> Result<(Option<String>, Value)> {
        let response = self
            .lambda
            .invoke()
            .function_name(name)
            .payload(Blob::new(event.to_string()))
            .send()
            .await
            .with_context(|| format!("Invoke {name}"))?;
        let payload = response.payload().context("Invoke returned no payload")?;
        let value = serde_json::from_slice(payload.as_ref()).with_context(|| {
            format!(
                "payload is not JSON: {:?}",
                String::from_utf8_lossy(payload.as_ref())
            )
        })?;
        Ok((response.function_error().map(str::to_string), value))
    }

    async fn delete(&self, function: &str) -> Result<()> {
        self.lambda
            .delete_function()
            .function_name(function)
            .send()
            .await?;
        self.iam
            .delete_role()
            .role_name(&self.role_name)
            .send()
            .await?;
        Ok(())
    }
}

async fn create_role(iam: &aws_sdk_iam::Client, name: &str, service: &str) -> Result<String> {
    let role = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy(service))
        .send()
        .await
        .with_context(|| format!("CreateRole {name}"))?;
    Ok(role
        .role()
        .context("CreateRole returned no role")?
        .arn()
        .to_string())
}

#[tokio::test]
async fn invoke_returns_the_handlers_computed_result() -> Result<()> {
    let fx = Fixture::new().await?;
    let name = common::unique("executor-greeter-");
    fx.create_function(&name, GREETER, 10).await?;

    let (error, output) = fx.invoke(&name, &json!({"name": "stepgate"})).await?;
    assert_eq!(error, None, "unexpected function error: {output}");
    assert_eq!(
        output,
        json!({"greeting": "Hello, STEPGATE!", "length": 8, "functionName": name})
    );

    // A second invocation reuses the warm runtime and still computes from its own event.
    let (_, output) = fx.invoke(&name, &json!({"name": "ok"})).await?;
    assert_eq!(output["greeting"], "Hello, OK!");

    fx.delete(&name).await
}

#[tokio::test]
async fn a_throwing_handler_gives_a_function_error() -> Result<()> {
    let fx = Fixture::new().await?;
    let name = common::unique("executor-thrower-");
    fx.create_function(&name, THROWER, 10).await?;

    let (error, payload) = fx.invoke(&name, &json!({"orderId": 42})).await?;
    assert_eq!(error.as_deref(), Some("Unhandled"), "payload: {payload}");
    assert_eq!(payload["errorType"], "Error");
    assert_eq!(payload["errorMessage"], "order 42 rejected");
    assert!(payload["trace"].is_array(), "no stack trace in {payload}");

    fx.delete(&name).await
}

#[tokio::test]
async fn a_handler_slower_than_its_timeout_times_out() -> Result<()> {
    let fx = Fixture::new().await?;
    let name = common::unique("executor-sleeper-");
    fx.create_function(&name, SLEEPER, 1).await?;

    let started = Instant::now();
    let (error, payload) = fx.invoke(&name, &json!({})).await?;
    let elapsed = started.elapsed();
    assert_eq!(error.as_deref(), Some("Unhandled"), "payload: {payload}");
    let message = payload["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.ends_with("Task timed out after 1.00 seconds"),
        "payload: {payload}"
    );
    // The handler was cut off, not waited out (its own sleep is 3 s; startup included).
    assert!(elapsed < Duration::from_secs(3), "invoke took {elapsed:?}");

    fx.delete(&name).await
}

#[tokio::test]
async fn a_step_functions_task_state_gets_the_lambdas_output() -> Result<()> {
    let fx = Fixture::new().await?;
    let config = common::sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let name = common::unique("executor-task-");
    let function_arn = fx.create_function(&name, GREETER, 10).await?;

    let sfn_role_name = common::unique("executor-sfn-role-");
    let sfn_role_arn = create_role(&fx.iam, &sfn_role_name, "states.amazonaws.com").await?;
    let definition = json!({
        "StartAt": "Greet",
        "States": {"Greet": {"Type": "Task", "Resource": function_arn, "End": true}}
    });
    let machine = sfn
        .create_state_machine()
        .name(&name)
        .definition(definition.to_string())
        .role_arn(&sfn_role_arn)
        .r#type(StateMachineType::Standard)
        .send()
        .await
        .context("CreateStateMachine")?;
    let machine_arn = machine.state_machine_arn().to_string();

    let input = json!({"name": "order-processor"});
    let execution = sfn
        .start_execution()
        .state_machine_arn(&machine_arn)
        .input(input.to_string())
        .send()
        .await
        .context("StartExecution")?;

    let deadline = Instant::now() + Duration::from_secs(60);
    let described = loop {
        let described = sfn
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await?;
        match described.status() {
            ExecutionStatus::Running if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            _ => break described,
        }
    };
    assert_eq!(
        described.status(),
        &ExecutionStatus::Succeeded,
        "execution: {described:?}"
    );
    let output: Value =
        serde_json::from_str(described.output().context("execution has no output")?)?;

    let (_, direct) = fx.invoke(&name, &input).await?;
    assert_eq!(
        output, direct,
        "the Task state's output is not the Lambda's"
    );
    assert_eq!(output["greeting"], "Hello, ORDER-PROCESSOR!");

    sfn.delete_state_machine()
        .state_machine_arn(&machine_arn)
        .send()
        .await?;
    fx.iam
        .delete_role()
        .role_name(&sfn_role_name)
        .send()
        .await?;
    fx.delete(&name).await
}
