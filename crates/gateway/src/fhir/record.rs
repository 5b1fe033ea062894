//! The vault's records read as FHIR resources: the same consent check and access logging as
//! `GET /records/{id}`.

use super::*;

/// `GET /fhir/{type}/{id}?purpose=…`: a vault record, released as `GET /records/{id}` releases
/// it (signed request, the reader's LogAccess in `Medledger-Access-Tx`, committed first); the
/// gateway opens it and answers the FHIR resource itself.
pub(super) async fn read_record(
    AxState(st): AxState<Arc<State>>,
    Path((resource_type, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    if !RECORD_TYPES.contains(&resource_type.as_str()) {
        return Err(FhirError::not_found(format!(
            "{} is not served here (records: {}; see /fhir/metadata)",
            resource_type.chars().take(64).collect::<String>(),
            RECORD_TYPES.join(", ")
        )));
    }
    let started = std::time::Instant::now();
    let tx = headers
        .get("medledger-access-tx")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| FhirError {
            status: StatusCode::UNAUTHORIZED,
            ..FhirError::new(
                StatusCode::UNAUTHORIZED,
                "login",
                "a record read needs the reader's signed LogAccess tx (base64) in the Medledger-Access-Tx header and an RFC 9421 signature",
            )
        })?
        .to_string();
    let released = st
        .release(&id, &uri, &authed.who, &tx, Some(&resource_type))
        .await?;
    let mut r = (StatusCode::OK, released.plaintext).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let Ok(v) = HeaderValue::from_str(&crate::records::server_timing(
        started.elapsed(),
        released.ledger_wait,
    )) {
        h.insert("server-timing", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{} {}",
        released.access_height, released.access_index
    )) {
        h.insert("medledger-access-event", v);
    }
    Ok(r)
}
