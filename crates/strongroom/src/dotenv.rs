//! The dotenv format, as the common loaders read it.
//!
//! `KEY=value` lines; an optional `export ` prefix; `#` comments on their own lines or
//! after an unquoted value (preceded by a space); `'single quotes'` taken literally;
//! `"double quotes"` with the escapes `\n \r \t \" \\ \$`; both quote styles may span
//! lines. A later definition of a key replaces an earlier one. Errors name the line.

/// A parse error: the 1-based line and what is wrong (never the value).
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Parses dotenv text into `(key, value)` pairs in file order (later duplicates replace
/// earlier ones).
pub fn parse(text: &str) -> Result<Vec<(String, String)>, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let (key, rest) = line.split_once('=').ok_or(ParseError {
            line: number,
            reason: "expected KEY=VALUE",
        })?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
        {
            return Err(ParseError {
                line: number,
                reason: "the key must be 1 or more of A-Z a-z 0-9 _ . - /",
            });
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                // The quoted value may continue on the following lines.
                let mut body = rest[1..].to_owned();
                let mut value = String::new();
                loop {
                    if let Some((parsed, after)) = take_quoted(&body, quote) {
                        value.push_str(&parsed);
                        let after = after.trim_start();
                        if !(after.is_empty() || after.starts_with('#')) {
                            return Err(ParseError {
                                line: number,
                                reason: "unexpected text after the closing quote",
                            });
                        }
                        break;
                    }
                    if i >= lines.len() {
                        return Err(ParseError {
                            line: number,
                            reason: "unterminated quoted value",
                        });
                    }
                    body.push('\n');
                    body.push_str(lines[i]);
                    i += 1;
                }
                value
            }
            _ => {
                let end = rest
                    .find(" #")
                    .or_else(|| rest.find("\t#"))
                    .unwrap_or(rest.len());
                rest[..end].trim_end().to_owned()
            }
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// Reads up to the closing `quote`; `None` if it is not in `body`.
fn take_quoted(body: &str, quote: char) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c == quote => return Some((value, &body[at + 1..])),
            '\\' if quote == '"' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, 't')) => value.push('\t'),
                Some((_, e @ ('"' | '\\' | '$'))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            c => value.push(c),
        }
    }
    None
}

/// One `KEY="value"` line, escaped so that `parse` (and common loaders) read it back
/// exactly.
pub fn line(key: &str, value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '$' => escaped.push_str("\\$"),
            c => escaped.push(c),
        }
    }
    format!("{key}=\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_rules() {
        let text = "# a comment\n\nexport API_KEY=sk-123 # trailing comment\nPLAIN = spaced value  \nSINGLE='no $escapes \\n here'\nDOUBLE=\"tab\\tnew\\nline \\\"q\\\" \\$HOME\"\nMULTI=\"first\nsecond\"\nHASH=a#b\nEMPTY=\nAPI_KEY=override\n";
        let parsed = parse(text).unwrap();
        let get = |k: &str| {
            parsed
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("API_KEY"), Some("override"));
        assert_eq!(get("PLAIN"), Some("spaced value"));
        assert_eq!(get("SINGLE"), Some("no $escapes \\n here"));
        assert_eq!(get("DOUBLE"), Some("tab\tnew\nline \"q\" $HOME"));
        assert_eq!(get("MULTI"), Some("first\nsecond"));
        assert_eq!(get("HASH"), Some("a#b"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(parsed.len(), 7);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("A=1\nnot a pair\n").unwrap_err(),
            ParseError {
                line: 2,
                reason: "expected KEY=VALUE"
            }
        );
        assert_eq!(
            parse("A=1\nB=\"open\nstill open\n").unwrap_err(),
            ParseError {
                line: 2,
                reason: "unterminated quoted value"
            }
        );
        assert_eq!(parse("BAD KEY=1").unwrap_err().line, 1);
        assert_eq!(
            parse("A=\"x\" y").unwrap_err().reason,
            "unexpected text after the closing quote"
        );
    }

    #[test]
    fn written_lines_read_back_exactly() {
        for value in [
            "plain",
            "with \"quotes\" and \\ backslash",
            "multi\nline\r\n\ttabbed",
            "$NOT_EXPANDED ${X}",
            "",
            "# not a comment",
            "'single'",
        ] {
            let text = line("K", value);
            assert_eq!(
                parse(&text).unwrap(),
                [("K".to_owned(), value.to_owned())],
                "{text}"
            );
        }
    }
}
