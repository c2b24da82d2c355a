//! How things are shown in one line: an error with its causes, and URLs
//! without the user information an endpoint may carry. A leaf, used by
//! every module that prints or logs.

/// The error and its causes on one line: `a: b: c`, skipping a cause already
/// contained in the text before it.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// `text` with the user information of every URL in it (`user:password@`
/// after `scheme://`) replaced by `***`: an endpoint URL may carry a
/// password, and no error, progress or log line may show it.
pub fn redact_userinfo(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority = after
            .find(|c: char| "/?#\"' \t\n<>".contains(c))
            .unwrap_or(after.len());
        match after[..authority].rfind('@') {
            Some(userinfo) => {
                out.push_str("***");
                rest = &after[userinfo..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// `url` without its user information: the API's invoke URL is for
/// clients, not the endpoint's credentials.
pub fn strip_userinfo(url: &str) -> String {
    redact_userinfo(url).replacen("://***@", "://", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_information_in_urls_is_never_shown() {
        for (text, shown) in [
            (
                "cannot reach AWS at http://user:secret@host:9/x (STS)",
                "cannot reach AWS at http://***@host:9/x (STS)",
            ),
            ("http://token@h", "http://***@h"),
            ("a http://h/p@x b", "a http://h/p@x b"),
            (
                "\"https://a:b@h\" and ftp://c:d@e?f",
                "\"https://***@h\" and ftp://***@e?f",
            ),
            ("user@example.com, no URL", "user@example.com, no URL"),
            ("http://p@ss:w@h/", "http://***@h/"),
        ] {
            assert_eq!(redact_userinfo(text), shown, "{text}");
        }
        assert_eq!(
            strip_userinfo("http://u:p@127.0.0.1:4566/"),
            "http://127.0.0.1:4566/"
        );
        assert_eq!(
            strip_userinfo("http://127.0.0.1:4566"),
            "http://127.0.0.1:4566"
        );
    }
}
