//! Colour. Text is built with ANSI styles and written through anstream,
//! which drops them when the stream is not a terminal, and honours
//! `NO_COLOR`, `CLICOLOR=0` and `CLICOLOR_FORCE`.

use std::fmt::Display;

use anstyle::{AnsiColor, Style};

/// `+`: created.
pub const CREATE: Style = AnsiColor::Green.on_default();
/// `~`: updated.
pub const UPDATE: Style = AnsiColor::Yellow.on_default();
/// `-`: deleted (and a document's removed lines).
pub const DELETE: Style = AnsiColor::Red.on_default();
/// `!`: a conflict, or a resource left alone.
pub const CONFLICT: Style = Style::new().bold();
/// A resource or a command that failed.
pub const FAILED: Style = AnsiColor::Red.on_default().bold();
/// What matters less: unchanged resources, durations.
pub const DIM: Style = Style::new().dimmed();

/// `text` in `style`.
pub fn paint(style: Style, text: impl Display) -> String {
    format!("{style}{text}{style:#}")
}

/// Whether `stream` gets colour, and so escape sequences at all.
pub fn enabled(stream: &impl anstream::stream::RawStream) -> bool {
    anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}
