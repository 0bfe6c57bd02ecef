//! # strongroom-gateway
//!
//! Resolves `{secret.NAME}` placeholders in HTTP header templates — as in PocketBase's
//! gateway, `"Authorization": "Bearer {secret.OPENAI_API_KEY}"` — from any
//! [`SecretSource`] (the Strongroom store implements it, feature `store`), and proxies
//! requests to upstreams with those headers (feature `proxy`).
//!
//! - Templates are parsed strictly when the configuration loads; errors name the route,
//!   the header and the byte position.
//! - Only configured templates expand. Values are inserted once, never re-scanned, never
//!   taken from the process environment, and refused if they hold CR, LF or NUL.
//! - Resolved header values are marked sensitive.
//!
//! ```
//! use strongroom_gateway::Template;
//! let t = Template::parse("Bearer {secret.OPENAI_API_KEY}")?;
//! assert_eq!(t.secrets().collect::<Vec<_>>(), ["OPENAI_API_KEY"]);
//! let rendered = t.render(|_name| Ok::<_, ()>(b"sk-123".to_vec())).unwrap();
//! assert_eq!(rendered, b"Bearer sk-123");
//! # Ok::<(), strongroom_gateway::TemplateError>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
#[cfg(feature = "proxy")]
mod proxy;
mod resolve;
mod source;
mod template;
mod upstream;

pub use config::{ConfigError, GatewayConfig, Route, DEFAULT_METHODS};
#[cfg(feature = "proxy")]
pub use proxy::{Gateway, Refusal};
pub use resolve::{resolve_headers, ResolveError};
pub use source::{SecretSource, SourceError};
pub use template::{Segment, Template, TemplateError};
#[doc(hidden)]
pub use upstream::fuzz_upstream;
pub use upstream::{PathError, RequestPath, Upstream};

#[doc(hidden)]
/// Body of the template fuzz target, shared with the replay test.
pub fn fuzz_template(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(template) = Template::parse(text) {
            // Parsing what we print gives the same template back.
            let again = Template::parse(&template.to_source()).expect("to_source output parses");
            assert_eq!(again, template);
        }
    }
}

/// The README's examples, compiled and run as a downstream crate would (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
