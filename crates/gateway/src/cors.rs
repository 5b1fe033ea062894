//! CORS, in one place: which routes a browser page of another origin may call, with which
//! methods and headers, and which answer headers it may read.
//!
//! Every route listed here authenticates each request by its RFC 9421 signature or bearer token,
//! never by a cookie, so any origin may call it: an origin gains nothing it could not do with its
//! own credentials (and `*` forbids credentialed requests anyway). Routes not listed get no CORS
//! headers, so a browser keeps other origins from reading them.
//!
//! Two middlewares share the table: [`preflight`] answers `OPTIONS` preflights, laid inside the
//! per-address limit so preflights count against it; [`headers`] adds the origin headers, laid
//! outermost so a 429 of that limit is readable by the page it throttles.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// One group of routes open to other origins.
struct Policy {
    /// Whether the policy covers `path`.
    covers: fn(&str) -> bool,
    /// The one method a page may use there, when only one: a cross-origin request with another
    /// gets no CORS headers. `None`: every method answers with them.
    only: Option<Method>,
    /// `Access-Control-Allow-Methods`: the methods a preflight says a page may use.
    allow_methods: &'static str,
    /// `Access-Control-Allow-Headers`: the request headers a page may send.
    allow_headers: &'static str,
    /// `Access-Control-Expose-Headers`: the answer headers a page may read (none when empty).
    expose_headers: &'static str,
}

/// How long a browser may reuse a preflight's answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";

/// The routes, first match wins.
const POLICIES: [Policy; 3] = [
    // `/fhir` and SMART's token endpoint and configuration (a browser-based SMART client
    // discovers and gets its token there). The headers FHIR clients send: a bearer token, FHIR's
    // `Prefer` and conditional headers, and the gateway's RFC 9421 signature headers and
    // record-read access tx.
    Policy {
        covers: is_fhir_or_smart_path,
        only: None,
        allow_methods: "GET, HEAD, POST, PUT",
        allow_headers: "Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, \
             If-None-Exist, If-Modified-Since, Signature, Signature-Input, Content-Digest, \
             Medledger-Access-Tx",
        expose_headers: "Location, Content-Location, ETag, Last-Modified, Link, Allow, \
             Retry-After, Server-Timing, Medledger-Access-Event, Medledger-Verified-State",
    },
    // `GET /records/{id}`: the patient page at one member's gateway asks the other holders of
    // the patient's records for their key shares, the signed read in headers.
    Policy {
        covers: is_record_path,
        only: Some(Method::GET),
        allow_methods: "GET",
        allow_headers: "Signature, Signature-Input, Content-Digest, Content-Type, \
             Medledger-Access-Tx, Medledger-Access-Index",
        expose_headers: "Server-Timing",
    },
    // `GET /break-glass/{patient}/{index}/reason`: the patient page asks the member that keeps
    // a reason for its text.
    Policy {
        covers: crate::breakglass::is_reason_path,
        only: Some(Method::GET),
        allow_methods: "GET",
        allow_headers: "Signature, Signature-Input, Content-Digest, Authorization",
        expose_headers: "",
    },
];

fn is_fhir_or_smart_path(path: &str) -> bool {
    crate::fhir::is_fhir_path(path)
        || path == "/auth/token"
        || path == "/.well-known/smart-configuration"
}

/// Whether `path` is `/records/{id}` (one segment; not `/records/{id}/anchor` or `/erase`).
fn is_record_path(path: &str) -> bool {
    path.strip_prefix("/records/")
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

fn policy(path: &str) -> Option<&'static Policy> {
    POLICIES.iter().find(|p| (p.covers)(path))
}

/// Middleware (inside the per-address limit, so preflights count): answers a preflight
/// (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) to a covered route with 204 and
/// what may be sent; [`headers`] adds the origin.
pub(crate) async fn preflight(req: Request, next: Next) -> Response {
    let h = req.headers();
    let asked = req.method() == Method::OPTIONS
        && h.contains_key(header::ORIGIN)
        && h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let Some(p) = policy(req.uri().path()).filter(|_| asked) else {
        return next.run(req).await;
    };
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(p.allow_methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(p.allow_headers),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    r
}

/// Middleware (outermost, so a 429 carries it too): the answer to a cross-origin request (one
/// with `Origin`) to a covered route, with one of its methods or a preflight, may be read by
/// that origin, with the headers the route exposes.
pub(crate) async fn headers(req: Request, next: Next) -> Response {
    let expose = policy(req.uri().path())
        .filter(|p| {
            req.headers().contains_key(header::ORIGIN)
                && (req.method() == Method::OPTIONS
                    || p.only.as_ref().is_none_or(|m| m == req.method()))
        })
        .map(|p| p.expose_headers);
    let mut r = next.run(req).await;
    if let Some(expose) = expose {
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        if !expose.is_empty() {
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(expose),
            );
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_gets_its_own_policy_and_others_none() {
        let methods = |path: &str| policy(path).map(|p| p.allow_methods);
        assert_eq!(methods("/fhir/Consent"), Some("GET, HEAD, POST, PUT"));
        assert_eq!(methods("/fhir"), Some("GET, HEAD, POST, PUT"));
        assert_eq!(methods("/auth/token"), Some("GET, HEAD, POST, PUT"));
        assert_eq!(methods("/records/obs-1"), Some("GET"));
        assert_eq!(methods("/break-glass/pt-1/3/reason"), Some("GET"));
        for p in [
            "/records/",
            "/records/obs-1/anchor",
            "/records/obs-1/erase",
            "/replicas/x",
            "/fhirx",
            "/admin/reshare",
            "/break-glass/pt-1/3",
            "/live",
        ] {
            assert!(policy(p).is_none(), "{p}");
        }
    }

    #[test]
    fn a_record_page_may_send_the_signed_read_and_nothing_else() {
        let Some(p) = policy("/records/obs-1") else {
            panic!("no policy for a record read");
        };
        assert!(p.allow_headers.contains("Medledger-Access-Index"));
        assert!(!p.allow_headers.contains("Authorization"));
        assert_eq!(p.only, Some(Method::GET));
        let Some(fhir) = policy("/fhir/Consent") else {
            panic!("no policy for /fhir");
        };
        for needed in [
            "Authorization",
            "Prefer",
            "Signature-Input",
            "Content-Digest",
        ] {
            assert!(fhir.allow_headers.contains(needed), "{needed}");
        }
        for exposed in ["Location", "ETag"] {
            assert!(fhir.expose_headers.contains(exposed), "{exposed}");
        }
    }
}
