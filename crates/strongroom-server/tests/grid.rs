//! The console's data routes: the key × env grid (`GET /api/grid`) and a secret's custom
//! metadata (`/api/secrets/{key}/settings`). Attacks first: a scoped token must learn
//! nothing of envs it may not list (no column, no fallback from them, no key only they
//! hold), no value ever appears, hostile input is refused or matches nothing, and a
//! refused metadata write changes nothing.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use serde_json::{json, Value};
use strongroom_server::Surfaces;
use strongroom_store::{Expiry, SecretId, SetRequest};

const ADMIN: &str = "grid-admin-token-0123456789";

async fn seed(server: &common::Server, env: &str, key: &str, request: SetRequest) {
    server
        .store
        .set(&SecretId::new("default", env, key), request)
        .await
        .unwrap();
}

/// `(env, state, from)` of each cell of `key`'s row.
fn cells(grid: &Value, key: &str) -> Vec<(String, String, Option<String>)> {
    let row = grid["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {grid}"));
    row["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["env"].as_str().unwrap().to_owned(),
                c["state"].as_str().unwrap().to_owned(),
                c["from"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn cell(env: &str, state: &str, from: Option<&str>) -> (String, String, Option<String>) {
    (env.into(), state.into(), from.map(Into::into))
}

#[tokio::test]
async fn the_grid_says_what_each_env_serves_and_nothing_a_token_may_not_list() {
    let server = common::start_sqlite(ADMIN, 9, Surfaces::default()).await;
    seed(
        &server,
        "global",
        "API_URL",
        SetRequest::value("value-global-api"),
    )
    .await;
    seed(
        &server,
        "prod",
        "API_URL",
        SetRequest::value("value-prod-api"),
    )
    .await;
    seed(
        &server,
        "global",
        "ONLY_GLOBAL",
        SetRequest::value("value-only-global"),
    )
    .await;
    seed(&server, "prod", "GONE", SetRequest::value("value-gone")).await;
    seed(
        &server,
        "staging",
        "ONLY_STAGING",
        SetRequest::value("value-staging"),
    )
    .await;
    seed(
        &server,
        "prod",
        "OLD",
        SetRequest {
            expiry: Expiry::At(1_000),
            ..SetRequest::value("value-old")
        },
    )
    .await;
    let (status, _) = server
        .call(
            "POST",
            "/api/secrets/GONE/versions/delete?env=prod",
            ADMIN,
            Some(json!({"versions": [1]})),
        )
        .await;
    assert_eq!(status, 200);

    let (status, grid) = server.call("GET", "/api/grid", ADMIN, None).await;
    assert_eq!(status, 200, "{grid}");
    assert_eq!(grid["envs"], json!(["global", "prod", "staging"]));
    assert_eq!(grid["total"], 5);
    assert_eq!(
        cells(&grid, "API_URL"),
        [
            cell("global", "set", None),
            cell("prod", "set", None),
            cell("staging", "fallback", Some("global")),
        ]
    );
    assert_eq!(
        cells(&grid, "ONLY_GLOBAL"),
        [
            cell("global", "set", None),
            cell("prod", "fallback", Some("global")),
            cell("staging", "fallback", Some("global")),
        ]
    );
    assert_eq!(
        cells(&grid, "GONE"),
        [
            cell("global", "missing", None),
            cell("prod", "deleted", None),
            cell("staging", "missing", None),
        ]
    );
    assert_eq!(cells(&grid, "OLD")[1], cell("prod", "expired", None));
    // A destroyed current version is `deleted` to the grid and the list alike.
    seed(
        &server,
        "staging",
        "ONLY_STAGING",
        SetRequest::value("value-staging-2"),
    )
    .await;
    let (status, _) = server
        .call(
            "POST",
            "/api/secrets/ONLY_STAGING/versions/destroy?env=staging",
            ADMIN,
            Some(json!({"versions": [2]})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, grid) = server.call("GET", "/api/grid", ADMIN, None).await;
    assert_eq!(
        cells(&grid, "ONLY_STAGING")[2],
        cell("staging", "deleted", None)
    );
    let (_, listed) = server
        .call("GET", "/api/secrets?env=staging&details=true", ADMIN, None)
        .await;
    assert_eq!(listed["items"][0]["state"], "deleted", "{listed}");
    assert!(!grid.to_string().contains("value-"), "a value in the grid");

    // Paging counts keys, in key order.
    let (_, second) = server
        .call("GET", "/api/grid?perPage=2&page=2", ADMIN, None)
        .await;
    let keys: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["OLD", "ONLY_GLOBAL"]);
    assert_eq!(second["total"], 5);

    // A token on prod alone: one column, no key only another env holds, and no fallback
    // from global (it may not list it: the cell says what it can see).
    let reader = server.token("prod-reader", "default/prod:list,read").await;
    let (status, scoped) = server.call("GET", "/api/grid", &reader, None).await;
    assert_eq!(status, 200, "{scoped}");
    assert_eq!(scoped["envs"], json!(["prod"]));
    assert_eq!(scoped["total"], 3, "{scoped}");
    for hidden in ["global", "staging", "ONLY_GLOBAL", "ONLY_STAGING"] {
        assert!(
            !scoped.to_string().contains(hidden),
            "{hidden} leaked: {scoped}"
        );
    }
    // A token that may only read (no `list`) sees no column at all.
    let user = server.token("prod-user", "default/prod:read").await;
    let (status, nothing) = server.call("GET", "/api/grid", &user, None).await;
    assert_eq!(status, 200);
    assert_eq!(nothing, json!({"envs": [], "items": [], "total": 0}));
    // Another namespace's token sees nothing of this one.
    let other = server.token("other", "payments/*:list,read").await;
    let (_, none) = server.call("GET", "/api/grid", &other, None).await;
    assert_eq!(none["total"], 0);

    // Hostile input: refused, or matches nothing; never an error with the input in it.
    for bad in [
        "/api/grid?namespace=..%2Fdefault",
        "/api/grid?namespace=DEFAULT",
        "/api/grid?perPage=0",
        "/api/grid?perPage=501",
        "/api/grid?page=0",
        "/api/grid?page=-1",
    ] {
        let (status, body) = server.call("GET", bad, ADMIN, None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = server
        .call("GET", "/api/grid?prefix=%25'%20OR%201=1%20--", ADMIN, None)
        .await;
    assert_eq!((status, body["total"].clone()), (200, json!(0)), "{body}");
    let (status, _) = server.call("GET", "/api/grid", "sr.nope.nope", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn custom_metadata_is_kept_checked_and_read_back_through_vaults_api() {
    let server = common::start_sqlite(ADMIN, 9, Surfaces::default()).await;
    seed(&server, "prod", "DB_URL", SetRequest::value("postgres://x")).await;
    let path = "/api/secrets/DB_URL/settings?env=prod";
    let (status, settings) = server
        .call(
            "PUT",
            path,
            ADMIN,
            Some(json!({"custom_metadata": {"owner": "team-a", "ticket": "OPS-12"}})),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings["custom_metadata"],
        json!({"owner": "team-a", "ticket": "OPS-12"})
    );
    assert_eq!(settings["cas_required"], false, "settings kept");
    let (_, read) = server.call("GET", path, ADMIN, None).await;
    assert_eq!(read["custom_metadata"]["owner"], "team-a");
    // The same labels through Vault's KV v2 metadata.
    let (status, vault) = server
        .call("GET", "/v1/secret/metadata/prod/DB_URL", ADMIN, None)
        .await;
    assert_eq!(status, 200, "{vault}");
    assert_eq!(vault["data"]["custom_metadata"]["ticket"], "OPS-12");

    // Refused whole, nothing changed: too many, too long, not text, unknown fields.
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    for bad in [
        json!({"custom_metadata": many}),
        json!({"custom_metadata": {"owner": "x".repeat(513)}}),
        json!({"custom_metadata": {"x".repeat(129): "v"}}),
        json!({"custom_metadata": {"": "v"}}),
        json!({"custom_metadata": {"owner": 7}}),
        json!({"custom_metadata": {"owner": "b"}, "max_versions": 3, "evil": true}),
    ] {
        let (status, body) = server.call("PUT", path, ADMIN, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, read) = server.call("GET", path, ADMIN, None).await;
    assert_eq!(
        read["custom_metadata"]["owner"], "team-a",
        "a refused write changed it"
    );
    assert_eq!(read["max_versions"], 10);

    // The same rule on Vault's surface: a write or a merge that would break the limits is
    // 400, and nothing of it is written (its max_versions neither).
    let sixty_three: serde_json::Map<String, Value> =
        (0..63).map(|i| (format!("m{i}"), json!("v"))).collect();
    for (method, body) in [
        ("POST", json!({"custom_metadata": many, "max_versions": 3})),
        (
            "POST",
            json!({"custom_metadata": {"owner": "x".repeat(513)}, "max_versions": 3}),
        ),
        // Merged with the two labels already there: 65.
        (
            "PATCH",
            json!({"custom_metadata": sixty_three, "max_versions": 3}),
        ),
    ] {
        let (status, answer) = server
            .call(method, "/v1/secret/metadata/prod/DB_URL", ADMIN, Some(body))
            .await;
        assert_eq!(status, 400, "{method}: {answer}");
    }
    let (_, read) = server.call("GET", path, ADMIN, None).await;
    assert_eq!(
        read["custom_metadata"]["owner"], "team-a",
        "a refused /v1 write changed it"
    );
    assert_eq!(
        read["max_versions"], 10,
        "a refused /v1 write changed the settings"
    );

    // Reading needs `list`; changing needs `write`.
    let reader = server.token("reader", "default/prod:list,read").await;
    let (status, _) = server.call("GET", path, &reader, None).await;
    assert_eq!(status, 200);
    let (status, _) = server
        .call("PUT", path, &reader, Some(json!({"custom_metadata": {}})))
        .await;
    assert_eq!(status, 403);
    let (_, read) = server.call("GET", path, ADMIN, None).await;
    assert_eq!(read["custom_metadata"]["owner"], "team-a");
}
