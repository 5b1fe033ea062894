//! The HTTP around the FHIR resources: content negotiation (the gateway answers JSON only, so a
//! `_format` or an `Accept` that names no JSON type is 406) and OperationOutcome bodies for unknown FHIR routes (404) and methods (405).

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;

use super::*;

/// Whether `path` is under `/fhir`: negotiation and OperationOutcome 404s apply there, and CORS
/// (crate::cors).
pub(crate) fn is_fhir_path(path: &str) -> bool {
    path == "/fhir" || path.starts_with("/fhir/")
}

/// Whether a media type or `_format` value (its parameters already cut off) is one the gateway
/// answers in: FHIR JSON, plain JSON, any `+json` type, the `json` shorthand, or a wildcard.
/// `application/fhir json` is `application/fhir+json` after a client left `+` unescaped in the
/// query (form decoding reads it as a space).
fn names_json(media: &str) -> bool {
    let m = media.trim().to_ascii_lowercase();
    matches!(
        m.as_str(),
        "json"
            | "*/*"
            | "application/*"
            | "application/json"
            | "text/json"
            | "application/fhir json"
    ) || m.ends_with("+json")
}

/// Whether an `Accept` header leaves the gateway a JSON answer: some range of it names JSON or a
/// wildcard with a quality above 0. No header, or an empty one, accepts anything.
fn accepts_json(accept: &str) -> bool {
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = v.trim();
            k.trim().eq_ignore_ascii_case("q")
                && v.starts_with('0')
                && v.bytes().all(|b| b == b'0' || b == b'.')
        });
        !refused && names_json(media)
    })
}

/// 406 unless the request can be answered in JSON. `_format` (R4: it overrides `Accept`, for
/// clients that cannot set headers) is checked first, every value of it; then `Accept`.
fn acceptable(query: Option<&str>, headers: &HeaderMap) -> Result<(), FhirError> {
    let formats: Vec<String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
            // A query that does not decode is the handler's to refuse.
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k == "_format")
            .map(|(_, v)| v)
            .collect();
    let refuse = |what: String, element: Option<&str>| FhirError {
        element: element.map(str::to_string),
        ..FhirError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-supported",
            format!(
                "{what}: this server answers FHIR JSON only (application/fhir+json, _format=json)"
            ),
        )
    };
    if !formats.is_empty() {
        return match formats
            .iter()
            .find(|f| !names_json(f.split(';').next().unwrap_or_default()))
        {
            Some(f) => Err(refuse(
                format!("_format={:?}", f.chars().take(64).collect::<String>()),
                Some("_format"),
            )),
            None => Ok(()),
        };
    }
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let accept = accept.join(",");
    if accepts_json(&accept) {
        Ok(())
    } else {
        Err(refuse(
            format!("Accept: {}", accept.chars().take(128).collect::<String>()),
            None,
        ))
    }
}

/// Middleware on the FHIR routes: [`acceptable`], before anything else is done.
pub(super) async fn negotiate(req: Request, next: Next) -> Response {
    if is_fhir_path(req.uri().path()) {
        if let Err(e) = acceptable(req.uri().query(), req.headers()) {
            return e.into_response();
        }
    }
    next.run(req).await
}

/// The fallback of the whole router: an OperationOutcome under `/fhir`, else the empty 404 the
/// rest of the gateway has always answered.
pub(crate) async fn not_found(uri: Uri) -> Response {
    if !is_fhir_path(uri.path()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    FhirError::not_found(format!(
        "{} is not a FHIR route of this server: GET /fhir/metadata lists what it answers",
        uri.path().chars().take(200).collect::<String>()
    ))
    .into_response()
}

/// A FHIR route asked with a method it does not take: 405, an OperationOutcome (axum adds the
/// route's `Allow` header).
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> FhirError {
    FhirError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        format!(
            "{method} is not answered at {}: the Allow header lists the methods that are, GET \
             /fhir/metadata the interactions",
            uri.path().chars().take(200).collect::<String>()
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, v.parse().unwrap());
        h
    }

    #[test]
    fn json_is_answered_and_xml_is_406() {
        let none = HeaderMap::new();
        for q in [
            "_format=json",
            "_format=application/fhir%2Bjson",
            "_format=application/fhir+json",
            "_format=application/json;charset=utf-8",
            "patient=pt-1",
            "%zz",
        ] {
            assert!(acceptable(Some(q), &none).is_ok(), "{q}");
        }
        for q in [
            "_format=xml",
            "_format=application/fhir%2Bxml",
            "_format=json&_format=ttl",
        ] {
            let e = acceptable(Some(q), &none).unwrap_err();
            assert_eq!((e.status.as_u16(), e.issue), (406, "not-supported"), "{q}");
            assert_eq!(e.element.as_deref(), Some("_format"));
        }
        for a in [
            "application/fhir+json",
            "application/json",
            "*/*",
            "application/fhir+xml;q=1.0, application/fhir+json;q=0.9",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "",
        ] {
            assert!(acceptable(None, &accept(a)).is_ok(), "{a}");
        }
        for a in [
            "application/fhir+xml",
            "application/xml, text/xml",
            "text/html",
            "application/fhir+json;q=0, application/xml",
        ] {
            let e = acceptable(None, &accept(a)).unwrap_err();
            assert_eq!(e.status.as_u16(), 406, "{a}");
        }
        // `_format` overrides Accept (R4), both ways.
        assert!(acceptable(Some("_format=json"), &accept("application/xml")).is_ok());
        assert!(acceptable(Some("_format=xml"), &accept("application/json")).is_err());
    }

    /// The layers as `server::router` stacks them, around two stand-in routes, over HTTP.
    #[tokio::test]
    async fn unknown_routes_and_methods_answer_operation_outcomes_with_cors() {
        use axum::middleware::from_fn;
        let app = axum::Router::new()
            .route("/fhir/metadata", get(|| async { "{}" }))
            .method_not_allowed_fallback(method_not_allowed)
            .route_layer(from_fn(negotiate))
            .route("/records/{id}", get(|| async { "r" }))
            .fallback(not_found)
            .layer(from_fn(crate::cors::preflight))
            .layer(from_fn(crate::cors::headers));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let origin = "https://app.example";
        let send = |m: reqwest::Method, path: &str| {
            http.request(m, format!("{base}{path}"))
                .header("origin", origin)
        };

        let r = send(reqwest::Method::DELETE, "/fhir/metadata")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
        assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(r.headers()["content-type"], FHIR_JSON);
        let oo: Value = r.json().await.unwrap();
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert_eq!(oo["issue"][0]["code"], "not-supported");

        let r = send(reqwest::Method::GET, "/fhir/Nothing")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
        assert_eq!(r.headers()["content-type"], FHIR_JSON);
        let oo: Value = r.json().await.unwrap();
        assert_eq!(oo["issue"][0]["code"], "not-found");
        // Outside /fhir: the gateway's empty 404, no CORS.
        let r = send(reqwest::Method::GET, "/nothing").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
        assert!(r.headers().get("access-control-allow-origin").is_none());
        assert!(r.bytes().await.unwrap().is_empty());

        let r = send(reqwest::Method::OPTIONS, "/fhir/metadata")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization, prefer")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert!(r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Prefer"));

        let r = send(reqwest::Method::GET, "/fhir/metadata?_format=xml")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 406);
        let r = send(reqwest::Method::GET, "/fhir/metadata")
            .header("accept", "application/fhir+xml")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 406);
        let r = send(reqwest::Method::GET, "/fhir/metadata?_format=json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let exposed = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert!(exposed.contains("Location") && exposed.contains("ETag"));
    }

    #[test]
    fn only_fhir_paths_are_fhir() {
        assert!(is_fhir_path("/fhir/metadata") && is_fhir_path("/fhir"));
        assert!(!is_fhir_path("/fhirx") && !is_fhir_path("/records/x"));
    }
}
