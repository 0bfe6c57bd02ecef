//! Building the upstream URL of a proxied request from a parsed base URL.
//!
//! The URL a request is sent to is never assembled by string search or concatenation of
//! what the client sent. The configured upstream is parsed once (at load); the client's
//! path after the route segment is split into segments *by position*, each segment is
//! percent-decoded, checked and re-encoded, and the segments are appended to the base
//! path. Before the URL is handed out, [`Upstream::join`] asserts that its scheme, host,
//! port and credentials are exactly the configured upstream's and that its path lies
//! under the configured base path.
//!
//! Refused, whatever the spelling: dot segments (`.`, `..`, `%2e`, `%2E`, `.%2e`,
//! `%252e`, ...), backslashes (raw or encoded), encoded slashes inside a segment, and
//! anything that decodes to one of those after further rounds of percent-decoding.

use percent_encoding::{percent_decode, percent_encode, AsciiSet, CONTROLS};
use url::Url;

/// Bytes re-encoded in an outgoing path segment: everything but RFC 3986 unreserved
/// characters, sub-delims, `:` and `@`.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(0x7f);

/// Why a request path was refused. Nothing is sent for any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `.` or `..` segment, in any spelling.
    #[error("the path holds a dot segment (. or ..), in some spelling")]
    DotSegment,
    /// A backslash, raw or encoded.
    #[error("the path holds a backslash")]
    Backslash,
    /// An encoded `/` inside a segment.
    #[error("the path holds an encoded slash inside a segment")]
    EncodedSlash,
    /// The path does not start with `/`.
    #[error("the path must start with /")]
    NotAbsolute,
    /// The built URL left the configured upstream (a defect if ever seen; never sent).
    #[error("the request would leave the configured upstream")]
    EscapesUpstream,
}

/// A configured upstream: an `http`/`https` base URL with a host, no credentials, no
/// query and no fragment; its path is the base every request stays under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    base: Url,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.base.as_str().trim_end_matches('/'))
    }
}

/// A request path after the route segment, checked: its decoded segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    /// Each segment once percent-decoded (never `.`/`..`, never holding `/` or `\`).
    segments: Vec<Vec<u8>>,
}

impl RequestPath {
    /// Checks `raw`, the path after the route segment exactly as the client sent it
    /// (percent-encoding kept): empty, or starting with `/`.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty() {
            return Ok(Self {
                segments: Vec::new(),
            });
        }
        let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let segments = rest
            .split('/')
            .map(check_segment)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { segments })
    }

    /// The decoded path, `/`-joined with a leading `/` (empty for no path), for matching
    /// against a route's `paths` allowlist. Not URL syntax: a `%` here is a literal `%`.
    pub fn decoded(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            out.push_str(&String::from_utf8_lossy(segment));
        }
        out
    }

    /// Whether the decoded path is `prefix` or lies under it, on a segment boundary
    /// (`/v1/chat` allows `/v1/chat` and `/v1/chat/x`, not `/v1/chatx`; `/v1/` allows
    /// everything under `/v1/`).
    pub fn is_under(&self, prefix: &str) -> bool {
        let path = self.decoded();
        if prefix.ends_with('/') {
            path.starts_with(prefix) || path == prefix.trim_end_matches('/')
        } else {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

/// Decodes one raw segment and refuses dot segments, slashes and backslashes in it, in
/// this and in further rounds of decoding.
fn check_segment(raw: &str) -> Result<Vec<u8>, PathError> {
    if raw.contains('\\') {
        return Err(PathError::Backslash);
    }
    let once: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    // Decoded again and again until nothing changes (an upstream, or a framework in front
    // of it, may decode more than once); every round is checked, so `%252e` is refused.
    let mut current = raw.as_bytes().to_vec();
    // Every decoding that changes the text shortens it, so this ends.
    loop {
        let decoded: Vec<u8> = percent_decode(&current).collect();
        if decoded == b"." || decoded == b".." || current == b"." || current == b".." {
            return Err(PathError::DotSegment);
        }
        if decoded.contains(&b'\\') {
            return Err(PathError::Backslash);
        }
        if decoded.contains(&b'/') {
            return Err(PathError::EncodedSlash);
        }
        if decoded == current {
            break;
        }
        current = decoded;
    }
    Ok(once)
}

impl Upstream {
    /// Parses a configured upstream base URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let base = Url::parse(text).map_err(|e| format!("upstream is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err("upstream must be an http:// or https:// URL".into());
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err("upstream must name a host".into());
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err("upstream must not hold credentials (user:password@)".into());
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err("upstream must not have a query or fragment".into());
        }
        if text.contains(['\\']) {
            return Err("upstream must not contain a backslash".into());
        }
        Ok(Self { base })
    }

    /// The base path without a trailing `/` (empty for the root).
    fn base_path(&self) -> &str {
        self.base.path().trim_end_matches('/')
    }

    /// The URL for `path` (after the route segment) with the client's raw query.
    pub fn join(&self, path: &RequestPath, raw_query: Option<&str>) -> Result<Url, PathError> {
        let mut url = self.base.clone();
        let mut joined = self.base_path().to_owned();
        for segment in &path.segments {
            joined.push('/');
            joined.extend(percent_encode(segment, SEGMENT));
        }
        if joined.is_empty() {
            joined.push('/');
        }
        url.set_path(&joined);
        url.set_query(raw_query);
        url.set_fragment(None);
        self.check(&url)?;
        Ok(url)
    }

    /// Asserts that `url` reaches exactly this upstream, under its base path.
    fn check(&self, url: &Url) -> Result<(), PathError> {
        let base = &self.base;
        let base_path = self.base_path();
        let under = url.path() == base.path()
            || url.path() == base_path
            || url
                .path()
                .strip_prefix(base_path)
                .is_some_and(|rest| rest.starts_with('/'));
        if url.scheme() == base.scheme()
            && url.host() == base.host()
            && url.port_or_known_default() == base.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
            && under
        {
            Ok(())
        } else {
            Err(PathError::EscapesUpstream)
        }
    }
}

#[doc(hidden)]
/// Body of the upstream-URL fuzz target, shared with the replay test: whatever the path
/// and query, a built URL stays on the configured upstream, under its base path.
pub fn fuzz_upstream(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    let upstream = Upstream::parse("https://api.example.com:8443/base/v1").expect("valid");
    let Ok(checked) = RequestPath::parse(path) else {
        return;
    };
    if let Ok(url) = upstream.join(&checked, query) {
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.host_str(), Some("api.example.com"));
        assert_eq!(url.port(), Some(8443));
        assert!(url.username().is_empty() && url.password().is_none());
        assert!(
            url.path() == "/base/v1" || url.path().starts_with("/base/v1/"),
            "{url}"
        );
        for segment in url.path_segments().into_iter().flatten() {
            let decoded: Vec<u8> = percent_decode(segment.as_bytes()).collect();
            assert!(decoded != b"." && decoded != b"..", "{url}");
        }
        // Parsing the URL's text again gives the same URL (no hidden normalisation).
        assert_eq!(Url::parse(url.as_str()).ok().as_ref(), Some(&url));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn join(base: &str, path: &str) -> Result<String, PathError> {
        let upstream = Upstream::parse(base).unwrap();
        RequestPath::parse(path)
            .and_then(|p| upstream.join(&p, None))
            .map(String::from)
    }

    #[test]
    fn the_reported_attack_stays_on_the_upstream() {
        // `/gateway/opena%69/gateway/openai@attacker.example/x`: the part after the route
        // segment, by position, is `/gateway/openai@attacker.example/x`.
        let url = join(
            "https://api.openai.com",
            "/gateway/openai@attacker.example/x",
        )
        .unwrap();
        assert_eq!(
            url,
            "https://api.openai.com/gateway/openai@attacker.example/x"
        );
        assert_eq!(Url::parse(&url).unwrap().host_str(), Some("api.openai.com"));
    }

    #[test]
    fn dot_segments_in_every_spelling_are_refused() {
        for path in [
            "/..",
            "/.",
            "/a/../b",
            "/%2e%2e/admin",
            "/%2E%2E/admin",
            "/.%2e/x",
            "/%2e./x",
            "/%252e%252e/x",
            "/%25252e%25252e/x",
            "/a/%2e",
            "/%2E",
        ] {
            assert_eq!(
                join("http://svc.internal/base", path),
                Err(PathError::DotSegment),
                "{path}"
            );
        }
    }

    #[test]
    fn backslashes_and_encoded_slashes_are_refused() {
        for path in ["/a\\b", "/%5c..", "/%5C", "/%255c"] {
            assert_eq!(
                join("http://svc/base", path),
                Err(PathError::Backslash),
                "{path}"
            );
        }
        for path in ["/a%2fb", "/%2F", "/..%2f", "/%252f"] {
            assert!(join("http://svc/base", path).is_err(), "{path}");
        }
    }

    #[test]
    fn ordinary_paths_keep_their_meaning() {
        assert_eq!(
            join("http://svc:8080/base/", "/v1/chat%20x/").unwrap(),
            "http://svc:8080/base/v1/chat%20x/"
        );
        assert_eq!(join("http://svc/base", "").unwrap(), "http://svc/base");
        assert_eq!(join("http://svc", "").unwrap(), "http://svc/");
        assert_eq!(join("http://svc", "/a:b@c").unwrap(), "http://svc/a:b@c");
        assert_eq!(join("http://svc", "/50%25").unwrap(), "http://svc/50%25");
        assert_eq!(join("http://svc", "/...").unwrap(), "http://svc/...");
    }

    #[test]
    fn allowlist_prefixes_match_on_segment_boundaries() {
        let path = RequestPath::parse("/v1/chat/completions").unwrap();
        assert!(path.is_under("/v1/chat"));
        assert!(path.is_under("/v1/"));
        assert!(!path.is_under("/v1/cha"));
        assert!(!RequestPath::parse("/v1/chatx")
            .unwrap()
            .is_under("/v1/chat"));
        assert!(RequestPath::parse("/v1").unwrap().is_under("/v1/"));
    }

    #[test]
    fn upstreams_with_credentials_or_queries_are_refused() {
        for bad in [
            "ftp://x",
            "https://user:pw@x",
            "https://x/?q=1",
            "https://x/#f",
            "x",
            "https://",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
