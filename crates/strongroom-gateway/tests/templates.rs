//! Template parsing: strict errors with positions, round trips, no second expansion.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use proptest::prelude::*;
use strongroom_gateway::{GatewayConfig, Segment, Template, TemplateError};

#[test]
fn placeholders_literals_and_escapes() {
    let t = Template::parse("Bearer {secret.A} and {secret.b.c/d-e_f} {{literal}").unwrap();
    assert_eq!(
        t.segments(),
        [
            Segment::Literal("Bearer ".into()),
            Segment::Secret("A".into()),
            Segment::Literal(" and ".into()),
            Segment::Secret("b.c/d-e_f".into()),
            Segment::Literal(" {literal}".into()),
        ]
    );
    let rendered = t
        .render(|name| Ok::<_, ()>(format!("<{name}:{{secret.X}}>").into_bytes()))
        .unwrap();
    assert_eq!(
        String::from_utf8(rendered).unwrap(),
        "Bearer <A:{secret.X}> and <b.c/d-e_f:{secret.X}> {literal}",
        "values are never expanded again"
    );
    assert_eq!(
        Template::parse("no braces } at all").unwrap().segments(),
        [Segment::Literal("no braces } at all".into())]
    );
}

#[test]
fn malformed_templates_say_what_and_where() {
    let cases = [
        (
            "Bearer {secret.KEY",
            TemplateError::Unclosed { position: 7 },
        ),
        ("x {secret.}", TemplateError::EmptyName { position: 2 }),
        (
            "{secret.BAD KEY}",
            TemplateError::InvalidName { position: 11 },
        ),
        ("ab{env.HOME}", TemplateError::UnknownKind { position: 2 }),
        ("{}", TemplateError::UnknownKind { position: 0 }),
        (
            "{secret.A{secret.B}}",
            TemplateError::InvalidName { position: 9 },
        ),
        ("tail {", TemplateError::Unclosed { position: 5 }),
    ];
    for (text, expected) in cases {
        assert_eq!(Template::parse(text).unwrap_err(), expected, "{text}");
    }
    let long = format!("{{secret.{}}}", "a".repeat(257));
    assert!(matches!(
        Template::parse(&long),
        Err(TemplateError::InvalidName { position: 264 })
    ));
}

#[test]
fn configuration_errors_name_route_header_and_position() {
    let toml = r#"
[[routes]]
name = "openai"
upstream = "https://api.openai.com"
env = "prod"
[routes.headers]
Authorization = "Bearer {secret.OPENAI_API_KEY"
"#;
    let message = GatewayConfig::from_toml(toml).unwrap_err().to_string();
    assert!(
        message.contains("\"openai\"")
            && message.contains("\"Authorization\"")
            && message.contains("byte 7"),
        "{message}"
    );
    for (bad, needle) in [
        (
            r#"[[routes]]
name = "x"
upstream = "ftp://example"
"#,
            "upstream must be",
        ),
        (
            r#"[[routes]]
name = "x"
upstream = "http://example"
[routes.headers]
Host = "evil"
"#,
            "hop-by-hop",
        ),
        (
            r#"[[routes]]
name = "x"
upstream = "http://example"
env = "Prod"
"#,
            "env must be",
        ),
        (
            r#"[[routes]]
name = "x"
upstream = "http://example"
surprise = 1
"#,
            "unknown field",
        ),
    ] {
        let message = GatewayConfig::from_toml(bad).unwrap_err().to_string();
        assert!(message.contains(needle), "{message}");
    }
    let json = r#"{"routes":[{"name":"a","upstream":"http://127.0.0.1:1/","headers":{"X-Key":"{secret.K}"}}]}"#;
    let config = GatewayConfig::from_json(json).unwrap();
    assert_eq!(
        config.routes["a"].upstream.to_string(),
        "http://127.0.0.1:1"
    );
    assert_eq!(config.routes["a"].env, "global");
}

#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut count = 0;
    for sub in ["corpus/template", "regressions/template"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            strongroom_gateway::fuzz_template(&std::fs::read(entry.unwrap().path()).unwrap());
            count += 1;
        }
    }
    assert!(count > 0, "fuzz/corpus/template is empty");
}

proptest! {
    #[test]
    fn text_without_braces_renders_to_itself(text in "[^{]*") {
        let t = Template::parse(&text).unwrap();
        prop_assert_eq!(t.render(|_| Err::<Vec<u8>, ()>(())).unwrap(), text.as_bytes());
    }

    #[test]
    fn parse_and_print_round_trip(parts in proptest::collection::vec(prop_oneof![
        "[^{]{0,12}".prop_map(Segment::Literal),
        "[A-Za-z0-9_./-]{1,20}".prop_map(Segment::Secret),
        Just(Segment::Literal("{".into())),
    ], 0..8)) {
        let source: String = parts.iter().map(|p| match p {
            Segment::Literal(t) => t.replace('{', "{{"),
            Segment::Secret(n) => format!("{{secret.{n}}}"),
        }).collect();
        let parsed = Template::parse(&source).unwrap();
        prop_assert_eq!(Template::parse(&parsed.to_source()).unwrap(), parsed.clone());
        let expected: String = parts.iter().map(|p| match p { Segment::Literal(t) => t.clone(), Segment::Secret(n) => format!("<{n}>") }).collect();
        let rendered = parsed.render(|n| Ok::<_, ()>(format!("<{n}>").into_bytes())).unwrap();
        prop_assert_eq!(String::from_utf8(rendered).unwrap(), expected);
    }

    #[test]
    fn arbitrary_input_never_panics(text in ".{0,64}") {
        strongroom_gateway::fuzz_template(text.as_bytes());
    }
}
