//! Places an order through the deployed API, as a client would: an HTTP POST
//! of the order alone to the invoke URL.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::limits::{bytes, ReadError, ORDER_BYTES};

pub const SAMPLE_ORDER: &str = r#"{"orderId":"O101","customerName":"Demo Customer","orderDate":"2022-01-15","orderAmount":1400,"paymentStatus":"SUCCESS"}"#;

/// The order to send: `--order` as JSON or @FILE, or the sample order with
/// another payment status.
pub fn order_from_args(order: &str, payment_status: Option<&str>) -> Result<Value> {
    let text = match order.strip_prefix('@') {
        Some(path) => match crate::limits::read_text(Path::new(path), ORDER_BYTES) {
            Ok(text) => text,
            Err(ReadError::TooLarge { limit }) => bail!(
                "--order @{path}: larger than {}, Step Functions' limit for an execution's input; send a smaller order",
                bytes(limit)
            ),
            Err(ReadError::Io(e)) => {
                return Err(e).with_context(|| format!("--order @{path}: cannot read the file"))
            }
        },
        None => order.to_string(),
    };
    if text.len() as u64 > ORDER_BYTES {
        bail!(
            "--order is larger than {}, Step Functions' limit for an execution's input; send a smaller order",
            bytes(ORDER_BYTES)
        );
    }
    let mut value: Value = serde_json::from_str(&text).context("--order is not valid JSON; pass the order object, e.g. --order '{\"orderId\":\"O1\",...}' or --order @order.json")?;
    if !value.is_object() {
        bail!("--order must be a JSON object");
    }
    if let Some(status) = payment_status {
        value["paymentStatus"] = Value::String(status.to_string());
    }
    Ok(value)
}

/// POSTs the order; returns the execution ARN that API Gateway's
/// StartExecution integration answers with.
pub fn post_order(url: &str, order: &Value) -> Result<String> {
    let response = ureq::post(url)
        .set("Content-Type", "application/json")
        .timeout(std::time::Duration::from_secs(30))
        .send_string(&order.to_string());
    let body = match response {
        Ok(r) => r.into_string().context("read the API's response")?,
        Err(ureq::Error::Status(code, r)) => {
            let body = r.into_string().unwrap_or_default();
            bail!("POST {url}: HTTP {code}: {body}");
        }
        Err(e) => bail!("POST {url}: {e}"),
    };
    let parsed: Value = serde_json::from_str(&body)
        .with_context(|| format!("POST {url}: the answer is not JSON: {body}"))?;
    parsed["executionArn"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("POST {url}: no executionArn in the answer: {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_order_with_another_payment_status() {
        let order = order_from_args(SAMPLE_ORDER, Some("FAILED")).unwrap();
        assert_eq!(order["paymentStatus"], "FAILED");
        assert_eq!(order["orderAmount"], 1400);
    }

    #[test]
    fn bad_orders_say_how_to_fix_them() {
        assert!(order_from_args("{oops", None)
            .unwrap_err()
            .to_string()
            .contains("--order @order.json"));
        assert!(order_from_args("@/dev/zero", None)
            .unwrap_err()
            .to_string()
            .contains("larger than 262,144 bytes"));
        let long = format!("{{\"note\":\"{}\"}}", "x".repeat(262_144));
        assert!(order_from_args(&long, None)
            .unwrap_err()
            .to_string()
            .contains("--order is larger than 262,144 bytes"));
        assert!(order_from_args("[1]", None)
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
    }
}
