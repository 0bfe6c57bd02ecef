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

/// Why a pair can not be written as a dotenv line. Names the key, never the value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The key is not a shell variable name.
    #[error("{0}: not a variable name ([A-Za-z_][A-Za-z0-9_]*); export it as JSON instead")]
    Key(String),
    /// The value can not be quoted so that `sh` and dotenv loaders read it alike.
    #[error("{0}: {1}; export it as JSON instead")]
    Value(String, &'static str),
}

/// One `KEY='value'` or `KEY="value"` line that reads back identically when sourced by
/// `sh` (`set -a; . ./.env`), parsed by [`parse`], and loaded by python-dotenv and the
/// loaders that follow its rules. Nothing in it is ever executed or expanded by a shell:
///
/// - a value without `'` and without two backslashes in a row is single-quoted (literal
///   everywhere, newlines too);
/// - otherwise, a value without `$` and `` ` `` is double-quoted with `\\` and `\"`
///   (the two escapes every parser reads alike);
/// - a value that needs double quotes but holds `$` or a backtick, a value holding `${`
///   (python-dotenv expands it in any quoting), a CR or NUL, or a final backslash has no
///   spelling all of them read alike, and is refused, as is a key that is not a variable
///   name. The error names the key, never the value; JSON export takes every value.
pub fn line(key: &str, value: &str) -> Result<String, WriteError> {
    let mut bytes = key.bytes();
    let valid_key = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_key {
        return Err(WriteError::Key(key.to_owned()));
    }
    if value.contains(['\r', '\0']) {
        return Err(WriteError::Value(
            key.to_owned(),
            "the value holds a carriage return or NUL, which dotenv loaders do not keep",
        ));
    }
    if value.ends_with('\\') {
        return Err(WriteError::Value(
            key.to_owned(),
            "the value ends with a backslash, which python-dotenv reads as escaping the closing quote",
        ));
    }
    if value.contains("${") {
        return Err(WriteError::Value(
            key.to_owned(),
            "the value holds ${, which dotenv loaders expand as a variable in any quoting",
        ));
    }
    // Single quotes are literal to sh and to [`parse`]; python-dotenv decodes a doubled
    // backslash and a backslash-quote inside them, so those must not occur.
    if !value.contains('\'') && !value.contains("\\\\") {
        return Ok(format!("{key}='{value}'"));
    }
    if value.contains(['$', '`']) {
        return Err(WriteError::Value(
            key.to_owned(),
            "the value holds a quote or backslash together with $ or a backtick, which no \
             dotenv quoting keeps identical for both sh and dotenv loaders",
        ));
    }
    let mut escaped = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            c => escaped.push(c),
        }
    }
    Ok(format!("{key}=\"{escaped}\""))
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
            "multi\nline\n\ttabbed",
            "$NOT_EXPANDED $X",
            "",
            "# not a comment",
            "'single'",
            "it's a \\ and \"q\"",
            "$(touch pwned) `touch pwned` $HOME",
            "  spaced  ",
            "héllo wörld ✓",
        ] {
            let text = line("K", value).unwrap();
            assert_eq!(
                parse(&text).unwrap(),
                [("K".to_owned(), value.to_owned())],
                "{text}"
            );
        }
        assert!(matches!(line("app.name", "x"), Err(WriteError::Key(_))));
        assert!(matches!(line("1X", "x"), Err(WriteError::Key(_))));
        assert!(matches!(
            line("K", "it's $HOME"),
            Err(WriteError::Value(..))
        ));
        assert!(matches!(line("K", "a\rb"), Err(WriteError::Value(..))));
        assert!(matches!(line("K", "${HOME}"), Err(WriteError::Value(..))));
        assert!(matches!(line("K", "ends\\"), Err(WriteError::Value(..))));
    }
}
