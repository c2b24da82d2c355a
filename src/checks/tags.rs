//! The characters AWS accepts in tag keys and values. IAM, Lambda, Step
//! Functions, CloudWatch Logs and API Gateway share the pattern
//! `[\p{L}\p{Z}\p{N}_.:/=+\-@]*` (IAM API Reference, `Tag`), so a tag that
//! passes here is accepted by every resource of the stack.

use unicode_general_category::{get_general_category, GeneralCategory as C};

/// The first character of `text` that AWS refuses in a tag, if any.
pub fn refused_char(text: &str) -> Option<char> {
    text.chars().find(|&c| !allowed(c))
}

fn allowed(c: char) -> bool {
    matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
        || matches!(
            get_general_category(c),
            // \p{L}: letters
            C::UppercaseLetter
                | C::LowercaseLetter
                | C::TitlecaseLetter
                | C::ModifierLetter
                | C::OtherLetter
                // \p{Z}: separators (space, no-break space, ...)
                | C::SpaceSeparator
                | C::LineSeparator
                | C::ParagraphSeparator
                // \p{N}: numbers
                | C::DecimalNumber
                | C::LetterNumber
                | C::OtherNumber
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_spaces_and_the_listed_symbols_only() {
        for ok in [
            "cost-center",
            "Cost Center",
            "a_b.c:d/e=f+g-h@i",
            "équipe",
            "チーム",
            "٣",
            "Ⅻ",
            "\u{00a0}",
            "",
        ] {
            assert_eq!(refused_char(ok), None, "{ok:?}");
        }
        for (bad, first) in [
            ("cost#center", '#'),
            ("a|b", '|'),
            ("two\nlines", '\n'),
            ("tab\there", '\t'),
            ("emoji🙂", '🙂'),
            // A combining mark is not a letter (\p{M}, not \p{L}).
            ("e\u{0301}", '\u{0301}'),
            ("quote\"", '"'),
        ] {
            assert_eq!(refused_char(bad), Some(first), "{bad:?}");
        }
    }
}
