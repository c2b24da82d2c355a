//! Places an order through the deployed API, as a client would: an HTTP POST
//! of the order alone to the invoke URL.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::limits::{bytes, ReadError, ORDER_BYTES};
use crate::project::Route;

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

/// The route `--route` names (`POST /recipes/r42/move`, matched against
/// the declared paths' `{param}` segments), or the only one; with the
/// concrete path to call.
pub fn pick_route<'a>(routes: &'a [Route], given: Option<&str>) -> Result<(&'a Route, String)> {
    let list = || routes.iter().map(Route::key).collect::<Vec<_>>().join(", ");
    let Some(given) = given else {
        return match routes {
            [only] if !only.path.contains('{') => Ok((only, only.path.clone())),
            [only] => bail!(
                "the route {} has path parameters: name the call with --route, e.g. --route '{}'",
                only.key(),
                only.key()
            ),
            [] => bail!("the project declares no route ([[routes]] in stepgate.toml)"),
            _ => bail!(
                "the project has several routes: name one with --route ({})",
                list()
            ),
        };
    };
    let (method, path) = given
        .trim()
        .split_once(' ')
        .map(|(m, p)| (m.to_ascii_uppercase(), p.trim().to_string()))
        .with_context(|| {
            format!("--route {given:?}: write METHOD PATH, e.g. --route 'POST /orderprocess'")
        })?;
    let matches = |template: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), path.split('/').collect());
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
    };
    routes
        .iter()
        .find(|r| r.method == method && matches(&r.path))
        .map(|r| (r, path.clone()))
        .with_context(|| {
            format!(
                "--route {given:?} matches no route of the project; it has {}",
                list()
            )
        })
}

/// Calls the route with `body` as JSON; returns the HTTP status and the
/// answer, JSON (or the text as a string).
pub fn call(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &Value,
) -> Result<(u16, Value)> {
    let mut request = ureq::request(method, url)
        .set("Content-Type", "application/json")
        .timeout(std::time::Duration::from_secs(30));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = if method == "GET" || method == "DELETE" {
        request.call()
    } else {
        request.send_string(&body.to_string())
    };
    let (status, text) = match response {
        Ok(r) => (
            r.status(),
            r.into_string().context("read the API's response")?,
        ),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => bail!("{method} {url}: {e}"),
    };
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// The execution's name in a StartExecution route's answer
/// (`{"executionId": ...}`: the route never hands out the whole ARN).
pub fn execution_id(status: u16, answer: &Value) -> Result<String> {
    let body = match answer {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if status >= 300 {
        bail!("HTTP {status}: {}", one_line(&body));
    }
    answer["executionId"]
        .as_str()
        .filter(|id| !id.is_empty() && !id.contains(':'))
        .map(str::to_string)
        .with_context(|| format!("no executionId in the answer: {}", one_line(&body)))
}

/// An HTTP body as one short line for an error message: an HTML page's
/// title (or its text without tags), whitespace collapsed, at most 200
/// characters. API Gateway, a proxy or a load balancer may answer with a
/// whole page.
fn one_line(body: &str) -> String {
    const MAX: usize = 200;
    let lower = body.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .map(|start| start + "<title>".len())
        .and_then(|start| Some(start..start + lower[start..].find("</title>")?))
        .map(|range| &body[range]);
    let text = match title {
        Some(title) => title.to_string(),
        None if body.trim_start().starts_with('<') => {
            let mut text = String::new();
            let mut in_tag = false;
            for c in body.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' if in_tag => {
                        in_tag = false;
                        text.push(' ');
                    }
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        }
        None => body.to_string(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "(empty)".into();
    }
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one HTTP exchange on loopback, answering with `response`.
    fn answer_once(response: &'static str) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/orderprocess", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // The whole request before answering: closing on unread bytes
            // resets the connection, and the client then reads nothing
            // (seen under load, when the body came in a second segment).
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).unwrap_or(0);
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                let complete = text.find("\r\n\r\n").is_some_and(|end| {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    request.len() >= end + 4 + length
                });
                if n == 0 || complete {
                    break;
                }
            }
            stream.write_all(response.as_bytes()).unwrap();
        });
        url
    }

    #[test]
    fn an_http_error_page_is_cut_to_one_line() {
        let url = answer_once(
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n\
             <html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n\
             <hr><center>nginx</center>\n</body>\n</html>\n",
        );
        let (status, answer) = call("POST", &url, &[], &serde_json::json!({})).unwrap();
        let message = execution_id(status, &answer).unwrap_err().to_string();
        assert_eq!(message, "HTTP 502: 502 Bad Gateway");

        let url = answer_once(
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n{\"message\":\n  \"Invalid request body\"}\n",
        );
        let (status, answer) = call("POST", &url, &[], &serde_json::json!({})).unwrap();
        let message = execution_id(status, &answer).unwrap_err().to_string();
        assert_eq!(message, "HTTP 400: {\"message\":\"Invalid request body\"}");
    }

    #[test]
    fn bodies_are_one_line_and_short() {
        assert_eq!(one_line("a\n\n  b\tc  "), "a b c");
        assert_eq!(one_line("<p>x</p>\n<p>y</p>"), "x y");
        let long = one_line(&"word ".repeat(100));
        assert!(
            long.ends_with("...") && long.chars().count() <= 203,
            "{long}"
        );
        assert_eq!(one_line(""), "(empty)");
    }

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
