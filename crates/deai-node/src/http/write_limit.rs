//! Per-IP rate limit on writes: a token bucket per client address (governor's GCRA).
//!
//! Reads are cheap and answered from memory; writes (a transaction into the mempool, a blob onto
//! disk, a round message) cost the node work and space, so one address may make at most
//! `writes_per_ip_per_s` of them per second on average, `writes_per_ip_burst` at once. Over that,
//! `429 rate_limited` with `Retry-After`. IPv6 clients are keyed by their /64, which one host
//! usually holds whole.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};

use super::HttpMetrics;
use crate::api::ApiError;

/// The per-IP write limiter, shared by every connection of a server.
pub(super) struct WriteLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    metrics: HttpMetrics,
}

impl WriteLimit {
    /// `None` when the rate is 0 (no limit).
    pub(super) fn new(per_s: u32, burst: u32, metrics: HttpMetrics) -> Option<Arc<Self>> {
        let per_s = NonZeroU32::new(per_s)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_s);
        Some(Arc::new(Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_s).allow_burst(burst)),
            metrics,
        }))
    }

    /// Forgets addresses whose bucket is full again (they would be allowed anyway).
    pub(super) fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Number of addresses remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// The key of a client address: IPv4 as is, IPv6 by its /64.
pub(super) fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware: refuses a write over its address's rate.
pub(super) async fn limit_writes(
    State(limit): State<Arc<WriteLimit>>,
    request: Request,
    next: Next,
) -> Response {
    let addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (Some(ip), true) = (addr, is_write(request.method())) else {
        return next.run(request).await;
    };
    let Err(not_until) = limit.limiter.check_key(&key(ip)) else {
        let mut request = request;
        request.extensions_mut().insert(WriteCharge {
            limit: limit.clone(),
            ip,
        });
        return next.run(request).await;
    };
    let wait = not_until.wait_time_from(limit.limiter.clock().now());
    limit.refusal(ip, wait).into_response()
}

impl WriteLimit {
    fn refusal(&self, ip: IpAddr, wait: std::time::Duration) -> RateLimited {
        self.metrics.rate_limited.inc();
        RateLimited {
            ip,
            secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    }
}

/// A write refused by the per-IP limit: `429 rate_limited` with `Retry-After`.
#[derive(Debug)]
pub struct RateLimited {
    ip: IpAddr,
    secs: u64,
}

impl IntoResponse for RateLimited {
    fn into_response(self) -> Response {
        let err = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: format!(
                "too many writes from {}; retry in {} s (the node's http.writes_per_ip_per_s)",
                self.ip, self.secs
            ),
        };
        let mut response = err.into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(self.secs.max(1)));
        response
    }
}

/// A write's handle on its address's bucket (a request extension, present only where the limit
/// is on): a handler that does the work of many writes in one request charges the rest here.
#[derive(Clone)]
pub struct WriteCharge {
    limit: Arc<WriteLimit>,
    ip: IpAddr,
}

impl WriteCharge {
    /// Charges `n` more writes at once, or refuses them all.
    pub fn charge(&self, n: u32) -> Result<(), RateLimited> {
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(());
        };
        let limiter = &self.limit.limiter;
        match limiter.check_key_n(&key(self.ip), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                Err(self.limit.refusal(self.ip, wait))
            }
            // More than the burst at once can never pass: say how long the rate takes to earn it.
            Err(_) => Err(self
                .limit
                .refusal(self.ip, std::time::Duration::from_secs(u64::from(n.get())))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_share_their_64_and_v4_mapped_is_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("test");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("test");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("test");
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("test");
        assert_eq!(key(mapped), "10.0.0.1".parse::<IpAddr>().expect("test"));
    }

    #[test]
    fn the_burst_then_the_rate() {
        let limit = WriteLimit::new(1, 3, HttpMetrics::detached()).expect("test");
        let ip: IpAddr = "10.0.0.1".parse().expect("test");
        let other: IpAddr = "10.0.0.2".parse().expect("test");
        for _ in 0..3 {
            assert!(limit.limiter.check_key(&ip).is_ok());
        }
        assert!(limit.limiter.check_key(&ip).is_err(), "over the burst");
        assert!(limit.limiter.check_key(&other).is_ok(), "per address");
        assert_eq!(limit.len(), 2);
        assert!(WriteLimit::new(0, 5, HttpMetrics::detached()).is_none());
    }

    #[test]
    fn a_charge_of_many_writes_takes_them_all_or_none() {
        let limit = WriteLimit::new(1, 10, HttpMetrics::detached()).expect("test");
        let ip: IpAddr = "10.0.0.1".parse().expect("test");
        let charge = WriteCharge {
            limit: limit.clone(),
            ip,
        };
        assert!(charge.charge(0).is_ok());
        assert!(charge.charge(8).is_ok());
        assert!(charge.charge(3).is_err(), "only 2 left");
        assert!(charge.charge(2).is_ok(), "a refused charge took nothing");
        assert!(charge.charge(11).is_err(), "over the burst");
    }
}
