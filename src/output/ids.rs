//! Resource ids as people read them: `log-group /aws/lambda/orders-dev-x`
//! (`ResourceId`'s Display), never `log-group//aws/lambda/...`.
//!
//! The AWS modules still name the resource at the head of their errors in
//! the older `kind/name` form. Until they use `ResourceId`'s Display, the
//! errors are put into the clean form here, where they leave stepgate:
//! the error line, the JSON reports' `error` fields and the progress lines.

use std::borrow::Cow;

use crate::plan::Kind;

const KINDS: [Kind; 6] = [
    Kind::Role,
    Kind::LogGroup,
    Kind::Function,
    Kind::StateMachine,
    Kind::RestApi,
    Kind::Stage,
];

/// `kind/name` -> `kind name` where a kind starts the text or follows a
/// space (the way stepgate's errors name a resource). Anything else is left
/// alone: an ARN's `:role/name` or `assumed-role/...` is not an id.
pub fn clean(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut cuts = Vec::new();
    for kind in KINDS {
        let head = format!("{}/", kind.as_str());
        for (at, _) in text.match_indices(&head) {
            let starts_word = at == 0 || bytes[at - 1] == b' ';
            let named = text.len() > at + head.len();
            if starts_word && named {
                cuts.push(at + head.len() - 1);
            }
        }
    }
    if cuts.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for at in cuts {
        out.replace_range(at..at + 1, " ");
    }
    Cow::Owned(out)
}

/// For serde: an error message with clean ids.
pub fn serialize_clean<S: serde::Serializer>(
    text: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => serializer.serialize_some(&clean(t)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn ids_at_the_head_of_an_error_or_after_a_space_are_cleaned() {
        assert_eq!(
            clean("log-group//aws/lambda/orders-dev-x: DescribeLogGroups: boom"),
            "log-group /aws/lambda/orders-dev-x: DescribeLogGroups: boom"
        );
        assert_eq!(
            clean("deploy: function/f: GetFunction: x; stage/dev: the REST API does not exist"),
            "deploy: function f: GetFunction: x; stage dev: the REST API does not exist"
        );
        assert_eq!(
            clean("rest-api/orders-dev-OrderProcessorAPI: GetRestApis: x"),
            "rest-api orders-dev-OrderProcessorAPI: GetRestApis: x"
        );
    }

    #[test]
    fn arns_and_other_slashes_are_left_alone() {
        for text in [
            "role/r: DeleteRole: AccessDenied: User: arn:aws:sts::1:assumed-role/gha/GitHubActions is not authorized",
            "arn:aws:iam::123456789012:role/orders-dev-us-east-1-lambda",
            "see https://example.com/stage/dev and a/b",
            "role/",
        ] {
            let cleaned = clean(text);
            assert!(!cleaned.contains(":role "), "{cleaned}");
            assert!(cleaned.contains("assumed-role/") || !text.contains("assumed-role/"));
            assert!(cleaned.contains("example.com/stage/dev") || !text.contains("example"));
        }
        assert_eq!(clean("role/"), "role/");
    }
}
