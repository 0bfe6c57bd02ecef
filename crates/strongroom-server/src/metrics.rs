//! `GET /metrics`: the Prometheus text format (`prometheus-client`). Labels are route
//! templates (`/api/secrets/{key}`), methods, status codes, gateway route names and KEK
//! versions: never a key name, a value, a token or a query string.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::extract::Caller;
use crate::{ApiError, AppState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GatewayLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyVersionLabels {
    kek_version: u32,
    kind: &'static str,
}

/// Tokens by state and by how they were issued (`token`, or an auth method's path: the
/// operator's configuration, never a token's name or secret).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    state: &'static str,
    method: String,
}

/// A lease-count quota by its name (the operator's) and what is counted.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    quota: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    token_lookups: Family<OutcomeLabels, Counter>,
    gateway_seconds: Family<GatewayLabels, Histogram, fn() -> Histogram>,
    gateway_errors: Family<GatewayLabels, Counter>,
    audit_events: Counter,
    transactions: Family<OutcomeLabels, Counter>,
    transaction_seconds: Counter<f64, AtomicU64>,
    chain_lock_holds: Counter,
    chain_lock_seconds: Counter<f64, AtomicU64>,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_invalidations: Counter,
    cache_live: Gauge,
    commit_lanes: Gauge,
    pool: Family<PoolLabels, Gauge>,
    values: Family<KeyVersionLabels, Gauge>,
    tokens: Family<TokenLabels, Gauge>,
    quotas: QuotaMetrics,
    leases: LeaseMetrics,
}

/// The leases' metrics: events, and live leases by state.
struct LeaseMetrics {
    events: Family<LeaseEventLabels, Counter>,
    live: Family<LeaseStateLabels, Gauge>,
}

impl LeaseMetrics {
    fn register(r: &mut Registry) -> Self {
        Self {
            events: add(
                r,
                "lease_events",
                "Leases of dynamic credentials issued, revoked, and failed revocation attempts",
                Family::default(),
            ),
            live: add(
                r,
                "leases",
                "Live leases by state (failing: its login could not be dropped yet; retried)",
                Family::default(),
            ),
        }
    }
}

/// What happened to leases: `issued`, `revoked`, `revocation_failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseEventLabels {
    event: &'static str,
}

/// Leases by state: `active`, `pending`, `failing` (revocation attempts failed, retried).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseStateLabels {
    state: &'static str,
}

/// The lease-count quotas' metrics: each cap, what it counts now, and its refusals.
struct QuotaMetrics {
    max: Family<QuotaLabels, Gauge>,
    live: Family<QuotaLabels, Gauge>,
    refusals: Family<QuotaLabels, Counter>,
}

impl QuotaMetrics {
    fn register(r: &mut Registry) -> Self {
        Self {
            max: add(
                r,
                "quota_max_leases",
                "Each lease-count quota's cap on live tokens",
                Family::default(),
            ),
            live: add(
                r,
                "quota_live_leases",
                "Live tokens each lease-count quota counts",
                Family::default(),
            ),
            refusals: add(
                r,
                "quota_refusals",
                "Token creations refused (429) because a lease-count quota was reached",
                Family::default(),
            ),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric, all at zero.
    #[allow(clippy::too_many_lines)] // one registration per metric, in the order shown
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("strongroom");
        Self {
            requests: add(
                &mut r,
                "http_requests",
                "HTTP requests by route template, method and status",
                Family::default(),
            ),
            request_seconds: add(
                &mut r,
                "http_request_duration_seconds",
                "HTTP request latency by route template",
                Family::new_with_constructor(latency as fn() -> Histogram),
            ),
            token_lookups: add(
                &mut r,
                "token_lookups",
                "Bearer tokens checked, by outcome",
                Family::default(),
            ),
            gateway_seconds: add(
                &mut r,
                "gateway_upstream_duration_seconds",
                "Gateway requests until the upstream's response head, by route",
                Family::new_with_constructor(latency as fn() -> Histogram),
            ),
            gateway_errors: add(
                &mut r,
                "gateway_upstream_errors",
                "Gateway requests the upstream failed (502, 504), by route",
                Family::default(),
            ),
            audit_events: add(
                &mut r,
                "audit_events_appended",
                "Audit events ever appended (the chain's head sequence number)",
                Counter::default(),
            ),
            transactions: add(
                &mut r,
                "store_transactions",
                "Write transactions of this server, by outcome",
                Family::default(),
            ),
            transaction_seconds: add(
                &mut r,
                "store_transaction_seconds",
                "Time in write transactions (commit and fsync included)",
                Counter::default(),
            ),
            chain_lock_holds: add(
                &mut r,
                "chain_lock_holds",
                "Write transactions that held the audit chain's lock (PostgreSQL)",
                Counter::default(),
            ),
            chain_lock_seconds: add(
                &mut r,
                "chain_lock_hold_seconds",
                "Time write transactions held the audit chain's lock (PostgreSQL); its rate is the share of time the lock is busy",
                Counter::default(),
            ),
            cache_hits: add(
                &mut r,
                "read_cache_hits",
                "Reads answered by the read cache",
                Counter::default(),
            ),
            cache_misses: add(
                &mut r,
                "read_cache_misses",
                "Reads that went to the database",
                Counter::default(),
            ),
            cache_invalidations: add(
                &mut r,
                "read_cache_invalidations",
                "Change notifications received",
                Counter::default(),
            ),
            cache_live: add(
                &mut r,
                "read_cache_live",
                "1 while the read cache's LISTEN connection is up",
                Gauge::default(),
            ),
            commit_lanes: add(
                &mut r,
                "group_commit_lanes",
                "Group commits this instance may run at once (PostgreSQL: 2, or 1 while another instance appends to the audit chain)",
                Gauge::default(),
            ),
            pool: add(
                &mut r,
                "db_pool_connections",
                "Database pool connections by state",
                Family::default(),
            ),
            values: add(
                &mut r,
                "stored_values",
                "Stored values by KEK version (current or kept): rotation progress",
                Family::default(),
            ),
            tokens: add(
                &mut r,
                "tokens",
                "API tokens by state (active, expired, used_up, revoked) and issuing method",
                Family::default(),
            ),
            quotas: QuotaMetrics::register(&mut r),
            leases: LeaseMetrics::register(&mut r),
            registry: r,
        }
    }

    /// Counts one lease event (`issued`, `revoked`, `revocation_failed`).
    pub(crate) fn lease_event(&self, event: &'static str) {
        self.leases
            .events
            .get_or_create(&LeaseEventLabels { event })
            .inc();
    }

    /// Sets the live leases by state.
    pub(crate) fn set_leases(&self, active: u64, pending: u64, failing: u64) {
        for (state, n) in [
            ("active", active),
            ("pending", pending),
            ("failing", failing),
        ] {
            self.leases
                .live
                .get_or_create(&LeaseStateLabels { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts one creation refused by the quota `quota`.
    pub(crate) fn quota_refused(&self, quota: &str) {
        self.quotas
            .refusals
            .get_or_create(&QuotaLabels {
                quota: quota.to_owned(),
            })
            .inc();
    }

    /// Live and ended tokens, by state and issuing method (read at each scrape: one read
    /// of the token rows).
    async fn count_tokens(
        &self,
        tokens: &strongroom_store::tokens::Tokens,
        caps: &[strongroom_store::tokens::LiveCap],
    ) {
        let Ok(list) = tokens.list().await else {
            return;
        };
        let now = strongroom_store::Timestamp::now();
        self.tokens.clear();
        self.quotas.max.clear();
        self.quotas.live.clear();
        for cap in caps {
            let labels = QuotaLabels {
                quota: cap.name.clone(),
            };
            self.quotas
                .max
                .get_or_create(&labels)
                .set(i64::try_from(cap.max).unwrap_or(i64::MAX));
            self.quotas.live.get_or_create(&labels).set(0);
        }
        for token in list {
            let state = if token.revoked.is_some() {
                "revoked"
            } else if token.expires.is_some_and(|at| at <= now) {
                "expired"
            } else if token.uses_left == Some(0) {
                "used_up"
            } else {
                "active"
            };
            if state == "active" {
                for cap in caps.iter().filter(|cap| cap.counts(&token)) {
                    self.quotas
                        .live
                        .get_or_create(&QuotaLabels {
                            quota: cap.name.clone(),
                        })
                        .inc();
                }
            }
            self.tokens
                .get_or_create(&TokenLabels {
                    state,
                    method: token.method.clone(),
                })
                .inc();
        }
    }

    /// Counts one bearer-token check.
    pub(crate) fn token_lookup(&self, accepted: bool) {
        let outcome = if accepted { "accepted" } else { "refused" };
        self.token_lookups
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Records one gateway request to `route` that took `seconds` with `status`.
    pub(crate) fn gateway_request(&self, route: &str, seconds: f64, status: StatusCode) {
        let labels = GatewayLabels {
            route: route.to_owned(),
        };
        self.gateway_seconds.get_or_create(&labels).observe(seconds);
        if matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
        ) {
            self.gateway_errors.get_or_create(&labels).inc();
        }
    }

    /// Reads the store's and backend's counters into the registry, then encodes it.
    async fn render(
        &self,
        store: Option<&crate::Secrets>,
        tokens: &strongroom_store::tokens::Tokens,
        caps: &[strongroom_store::tokens::LiveCap],
    ) -> Result<String, std::fmt::Error> {
        self.count_tokens(tokens, caps).await;
        if let Some(store) = store {
            if let Ok(head) = store.audit_head().await {
                set(&self.audit_events, u64::try_from(head).unwrap_or(0));
            }
            let stats = store.stats();
            set(
                &self.transactions.get_or_create(&OutcomeLabels {
                    outcome: "committed",
                }),
                stats.committed_transactions,
            );
            set(
                &self
                    .transactions
                    .get_or_create(&OutcomeLabels { outcome: "failed" }),
                stats.failed_transactions,
            );
            self.transaction_seconds
                .inner()
                .store(stats.transaction_seconds.to_bits(), Ordering::Relaxed);
            self.commit_lanes
                .set(i64::try_from(stats.commit_lanes).unwrap_or(i64::MAX));
            if let Some(holds) = stats.backend.chain_lock {
                set(&self.chain_lock_holds, holds.count());
                #[allow(clippy::cast_precision_loss)] // microseconds: exact below 2^53
                let seconds = holds.sum_us as f64 / 1e6;
                self.chain_lock_seconds
                    .inner()
                    .store(seconds.to_bits(), Ordering::Relaxed);
            }
            if let Some(cache) = stats.backend.read_cache {
                set(&self.cache_hits, cache.hits);
                set(&self.cache_misses, cache.misses);
                set(&self.cache_invalidations, cache.invalidations);
                self.cache_live.set(i64::from(cache.live));
            }
            if let Some(pool) = stats.backend.pool {
                for (state, n) in [
                    ("open", pool.size),
                    ("idle", pool.available),
                    ("max", pool.max),
                ] {
                    self.pool
                        .get_or_create(&PoolLabels { state })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            if let Ok(status) = store.rotation_status().await {
                self.values.clear();
                for usage in status.by_version {
                    for (kind, n) in [("current", usage.current), ("kept", usage.history)] {
                        let kek_version = usage.kek_version;
                        self.values
                            .get_or_create(&KeyVersionLabels { kek_version, kind })
                            .set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                }
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Registers `metric` under `name` and returns it (a handle to the registered one).
fn add<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
    metric
}

/// Sets a counter to an absolute value read elsewhere (a monotonic source).
fn set(counter: &Counter, value: u64) {
    counter.inner().store(value, Ordering::Relaxed);
}

/// A layer: counts and times every request by its route template.
pub(crate) async fn track_requests(
    State(metrics): State<Arc<Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .request_seconds
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics` on the API address: superuser tokens only.
pub(crate) async fn scrape_with_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Response {
    if !caller.superuser {
        return ApiError::forbidden("/metrics needs a superuser token (or scrape --metrics-bind)")
            .into_response();
    }
    scrape(&state).await
}

/// `GET /metrics` on the metrics address (`--metrics-bind`): no token; bind it where only
/// the scraper reaches.
pub(crate) async fn scrape_open(State(state): State<AppState>) -> Response {
    scrape(&state).await
}

async fn scrape(state: &AppState) -> Response {
    let Some(metrics) = &state.metrics else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "metrics are off (serve --metrics)",
        )
        .into_response();
    };
    let caps = crate::vault::quotas::caps_for_metrics(state).await;
    if let Some(counts) = crate::vault::database::leases::counts(state).await {
        metrics.set_leases(counts.0, counts.1, counts.2);
    }
    match metrics
        .render(state.store.as_ref(), &state.tokens, &caps)
        .await
    {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .into_response(),
    }
}
