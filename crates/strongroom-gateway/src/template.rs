//! Header templates: literal text with `{secret.NAME}` placeholders.
//!
//! Grammar: `{{` is a literal `{`; `{secret.NAME}` is a placeholder, `NAME` being a secret
//! key (`A-Z a-z 0-9 _ . - /`, 1 to 256 bytes); any other `{` is an error; a `}` on its own
//! is literal. Parsing is strict and happens when the configuration loads.

use std::fmt::Write as _;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text copied as is.
    Literal(String),
    /// A secret's value, by key.
    Secret(String),
}

/// A parsed header template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// Why a template does not parse, and where (byte offset into the template).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{` without a closing `}`.
    #[error("unclosed '{{' at byte {position}")]
    Unclosed {
        /// Byte offset of the `{`.
        position: usize,
    },
    /// `{secret.}`.
    #[error("empty secret name at byte {position}")]
    EmptyName {
        /// Byte offset of the `{`.
        position: usize,
    },
    /// A name with a character keys can not hold, or over 256 bytes.
    #[error("invalid secret name at byte {position}: keys are 1-256 bytes of A-Z a-z 0-9 _ . - /")]
    InvalidName {
        /// Byte offset of the offending character.
        position: usize,
    },
    /// `{something}` other than `{secret.NAME}`.
    #[error("unknown placeholder kind at byte {position}: only {{secret.NAME}} is supported (write {{{{ for a literal '{{')")]
    UnknownKind {
        /// Byte offset of the `{`.
        position: usize,
    },
}

const PREFIX: &str = "secret.";
const MAX_NAME: usize = 256;

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-/".contains(c)
}

impl Template {
    /// Parses a template.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(brace) = rest.find('{') {
            literal.push_str(&rest[..brace]);
            let at = offset + brace;
            let after = &rest[brace + 1..];
            if let Some(stripped) = after.strip_prefix('{') {
                literal.push('{');
                offset = at + 2;
                rest = stripped;
                continue;
            }
            let Some(close) = after.find('}') else {
                return Err(TemplateError::Unclosed { position: at });
            };
            let inner = &after[..close];
            let Some(name) = inner.strip_prefix(PREFIX) else {
                return Err(if inner.contains('{') {
                    TemplateError::Unclosed { position: at }
                } else {
                    TemplateError::UnknownKind { position: at }
                });
            };
            if name.is_empty() {
                return Err(TemplateError::EmptyName { position: at });
            }
            if let Some((i, _)) = name.char_indices().find(|(_, c)| !name_char(*c)) {
                return Err(TemplateError::InvalidName {
                    position: at + 1 + PREFIX.len() + i,
                });
            }
            if name.len() > MAX_NAME {
                return Err(TemplateError::InvalidName {
                    position: at + 1 + PREFIX.len() + MAX_NAME,
                });
            }
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Secret(name.to_owned()));
            offset = at + 1 + close + 1;
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Self { segments })
    }

    /// The pieces.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The secret keys this template needs, in order (with repeats).
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Secret(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The template written back in its own syntax (`{` escaped as `{{`).
    pub fn to_source(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(&text.replace('{', "{{")),
                Segment::Secret(name) => {
                    let _ = write!(out, "{{{PREFIX}{name}}}");
                }
            }
        }
        out
    }

    /// Renders with `lookup` giving each secret's bytes. Values are inserted as they
    /// are — never scanned for placeholders again.
    pub fn render<E>(
        &self,
        mut lookup: impl FnMut(&str) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        let mut out = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Segment::Secret(name) => out.extend_from_slice(&lookup(name)?),
            }
        }
        Ok(out)
    }
}
