//! Text for people: what is shown of a host's output in messages and on a terminal.

use std::borrow::Cow;

/// Text from hosts made safe for a terminal: control characters other than newline and tab
/// (escape sequences a hostile or odd host could plant in a file) are shown escaped.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\n' | '\t' => c.to_string(),
                c if c.is_control() => c.escape_default().to_string(),
                c => c.to_string(),
            })
            .collect(),
    )
}

/// The last `max` bytes of `text` (on a char boundary), trimmed, for error messages.
pub fn tail(text: &str, max: usize) -> &str {
    let text = text.trim();
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
