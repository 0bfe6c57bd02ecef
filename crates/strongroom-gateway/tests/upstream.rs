//! The upstream URL builder against generated hostile paths: whatever a client sends
//! after the route segment, the URL reaches only the configured scheme, host and port,
//! under the configured base path, and no dot segment survives in any spelling.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use proptest::prelude::*;
use strongroom_gateway::{GatewayConfig, PathError, RequestPath, Upstream};

/// Pieces a hostile path is made of: separators, dots, escapes of them (single and
/// double), `@`, `:`, `?`, `#`, backslashes, host-like text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E".to_owned()),
        Just("%252e".to_owned()),
        Just("%2f".to_owned()),
        Just("%2F".to_owned()),
        Just("%252f".to_owned()),
        Just("%5c".to_owned()),
        Just("\\".to_owned()),
        Just("%".to_owned()),
        Just("%25".to_owned()),
        Just("@".to_owned()),
        Just(":".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("%40".to_owned()),
        Just("%3f".to_owned()),
        Just("%23".to_owned()),
        Just("attacker.example".to_owned()),
        Just("//evil:1".to_owned()),
        "[a-z0-9]{1,3}",
    ]
}

fn hostile_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn built_urls_stay_on_the_upstream(path in hostile_path(), query in proptest::option::of("[a-z=&%?/#@.]{0,12}")) {
        let text = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        // The shared fuzz body asserts scheme, host, port, no credentials, the base path,
        // no dot segment, and that the URL's text parses to the same URL.
        strongroom_gateway::fuzz_upstream(text.as_bytes());
        let upstream = Upstream::parse("https://api.example.com:8443/base/v1").unwrap();
        if let Ok(checked) = RequestPath::parse(&path) {
            let url = upstream.join(&checked, None).unwrap();
            prop_assert_eq!(url.host_str(), Some("api.example.com"));
            prop_assert!(url.path().starts_with("/base/v1"));
        }
    }

    #[test]
    fn any_dot_segment_spelling_is_refused(
        before in "(/[a-z]{1,3}){0,3}",
        dots in prop_oneof![Just("."), Just(".."), Just("%2e"), Just("%2E%2e"), Just(".%2E"), Just("%252e%252E"), Just("%25252e")],
        after in "(/[a-z]{1,3}){0,3}",
    ) {
        let path = format!("{before}/{dots}{after}");
        prop_assert_eq!(RequestPath::parse(&path), Err(PathError::DotSegment));
    }
}

#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut count = 0;
    for sub in ["corpus/upstream", "regressions/upstream"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            strongroom_gateway::fuzz_upstream(&std::fs::read(entry.unwrap().path()).unwrap());
            count += 1;
        }
    }
    assert!(count > 0, "fuzz/corpus/upstream is empty");
}

#[test]
fn route_allowlists_and_refused_methods() {
    let config = GatewayConfig::from_toml(
        r#"
[[routes]]
name = "ro"
upstream = "https://api.example.com/v1"
methods = ["get", "HEAD"]
paths = ["/models", "/files/"]
"#,
    )
    .unwrap();
    let route = &config.routes["ro"];
    assert!(route.allows_method(&http::Method::GET));
    assert!(!route.allows_method(&http::Method::POST));
    assert!(route.allows_path(&RequestPath::parse("/models").unwrap()));
    assert!(route.allows_path(&RequestPath::parse("/models/gpt").unwrap()));
    assert!(!route.allows_path(&RequestPath::parse("/modelsx").unwrap()));
    assert!(route.allows_path(&RequestPath::parse("/files/a").unwrap()));
    assert!(!route.allows_path(&RequestPath::parse("/admin").unwrap()));

    let defaults =
        GatewayConfig::from_toml("[[routes]]\nname = \"d\"\nupstream = \"https://x\"\n").unwrap();
    let d = &defaults.routes["d"];
    assert!(!d.allows_method(&http::Method::TRACE));
    assert!(!d.allows_method(&http::Method::CONNECT));
    assert!(d.allows_method(&http::Method::PATCH));

    for (bad, says) in [
        ("methods = [\"TRACE\"]", "never forwarded"),
        ("methods = [\"connect\"]", "never forwarded"),
        ("methods = []", "at least one"),
        ("paths = [\"v1\"]", "must start with /"),
        ("paths = [\"/v1/%41\"]", "must be a plain path"),
        ("paths = [\"/v1/../admin\"]", "dot segment"),
        ("paths = [\"/v1/%2e%2e\"]", "dot segment"),
    ] {
        let error = GatewayConfig::from_toml(&format!(
            "[[routes]]\nname = \"r\"\nupstream = \"https://x\"\n{bad}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains(says), "{bad}: {error}");
    }
    for bad in [
        "https://user:pw@x",
        "https://x/?q=1",
        "ftp://x",
        "https://x/#f",
    ] {
        let error =
            GatewayConfig::from_toml(&format!("[[routes]]\nname = \"r\"\nupstream = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
        assert!(error.contains("upstream"), "{bad}: {error}");
        assert!(!error.contains("pw"), "{error}");
    }
}
