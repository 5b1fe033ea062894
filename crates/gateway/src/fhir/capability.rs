//! `GET /fhir/metadata`: the CapabilityStatement; `GET /fhir/OperationDefinition/{id}`: the
//! `$prepare` operations it declares.

use super::*;

pub(super) async fn metadata(AxState(st): AxState<Arc<State>>) -> Response {
    fhir(StatusCode::OK, &capability_statement(&st.public_url))
}

/// `GET /fhir/OperationDefinition/{id}`: `Consent-prepare` or `Claim-prepare` (anyone, as
/// `metadata`: it describes the server, nothing of anyone's).
pub(super) async fn read_operation_definition(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
) -> FhirResult {
    operation_definition(&st.public_url, &id)
        .map(|d| fhir(StatusCode::OK, &d))
        .ok_or_else(|| {
            FhirError::not_found(format!(
                "no OperationDefinition {:?} here: Consent-prepare and Claim-prepare are",
                id.chars().take(64).collect::<String>()
            ))
        })
}

/// What every search takes, said once for all resources (`rest.documentation`).
const SEARCH_DOCUMENTATION: &str = "Every search answers a searchset Bundle with a self link. \
    _count (1 to 1000; default 100) pages it: links self, first, previous and next carry \
    _offset and _height, the certified height the first page was read at, so that all pages of \
    one search prove against one state. _summary=count answers the total only (_summary=false \
    and _summary=data the whole answer; other _summary values are 400). _format=json and \
    Accept application/fhir+json are answered; XML or any other format is 406. A parameter not \
    listed for the resource is ignored and named in an OperationOutcome entry (search.mode \
    outcome), or refused with 400 under Prefer: handling=strict. A parameter given twice with \
    different values (patient=a&patient=b) is 400, except date (each applies). Every refusal \
    is an OperationOutcome, 404 and 405 included. CORS: any origin may call /fhir (requests \
    are authenticated by RFC 9421 signatures or bearer tokens, never cookies).";

/// The canonical URL of an operation this server defines.
fn operation_url(base: &str, id: &str) -> String {
    format!("{base}/fhir/OperationDefinition/{id}")
}

/// The CapabilityStatement: exactly what this gateway answers.
pub fn capability_statement(base: &str) -> Value {
    let read = json!({ "code": "read" });
    let search = json!({ "code": "search-type" });
    let create = json!({ "code": "create" });
    let param = |name: &str, ty: &str, definition: &str, doc: &str| json!({ "name": name, "definition": format!("http://hl7.org/fhir/SearchParameter/{definition}"), "type": ty, "documentation": doc });
    let prepare = |resource: &str, doc: &str| json!([{ "name": "prepare", "definition": operation_url(base, &format!("{resource}-prepare")), "documentation": doc }]);
    let vault_types: Vec<Value> = RECORD_TYPES
        .iter()
        .filter(|t| **t != "DocumentReference")
        .map(|t| json!({
            "type": t,
            "documentation": "A record in this member's vault, released under a consent the ledger proves, after the reader's signed LogAccess is committed (headers Signature-Input, Signature, Content-Digest per RFC 9421, and Medledger-Access-Tx; query purpose=TREAT|ETREAT|HPAYMT|HOPERAT|HRESCH).",
            "interaction": [read],
        }))
        .collect();
    let mut resources = vec![
        json!({
            "type": "Consent",
            "documentation": "The ledger's patient consents. Create: POST Consent/$prepare with a Consent, sign signBytes with the patient's Ed25519 key, POST the Parameters (txBody, signature, signer) to Consent; an inactive Consent revokes. Update (revoke): PUT Consent/{id} with the Consent as read, status inactive, and If-Match (428 without, 412 stale): 202 with the Parameters to sign; PUT the signed Parameters (txBody, signature, signer) to the same URL with the same If-Match. The gateway never signs for a patient. meta.versionId and the ETag are the height of the block that last changed the consent.",
            "interaction": [read, { "code": "vread" }, { "code": "update" }, { "code": "history-instance" }, search, create],
            "versioning": "versioned-update",
            "updateCreate": false,
            "searchParam": [param("patient", "reference", "clinical-patient", "Patient/{ledger patient id}, once")],
            "operation": prepare("Consent", "The GrantConsent or RevokeConsent tx body a Consent makes, and the exact bytes the patient signs."),
        }),
        json!({
            "type": "AuditEvent",
            "documentation": "IHE BALP AuditEvents of a patient's complete, proven access history; each entry carries its ICS23 proof, the Bundle the certificate and height it was verified against.",
            "interaction": [read, search],
            "searchParam": [
                param("patient", "reference", "AuditEvent-patient", "Patient/{ledger patient id}, once"),
                param("date", "date", "AuditEvent-date", "eq, ge, gt, le, lt, then YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with a zone; repeated: all apply; not with _summary=count"),
                // medledger's own: how the answer proves the events (no HL7 definition).
                json!({ "name": "proof", "type": "token", "documentation": "entry (the default): each event with its ICS23 proof; digest: every page with one proof of the history's digest, each event with its value only (a break-glass or reported one also with its proof), so the pages together prove the complete history with one proof; not with date" }),
            ],
        }),
        json!({
            "type": "Claim",
            "documentation": "Submit a claim, answered with the ledger's adjudication as a ClaimResponse (Location: the Claim; Content-Location: the ClaimResponse, of the same id). The provider's admin key POSTs the Claim (the gateway signs with the member's key); a practitioner (physician, nurse, lab technician, claims adjuster) POSTs it to Claim/$prepare, signs signBytes with their own key and POSTs the Parameters (txBody, signature, signer), so the ledger names who billed. Every request is authenticated (RFC 9421 or a bearer token from POST /auth/token).",
            "interaction": [read, create],
            "operation": [
                prepare("Claim", "The SubmitClaim tx body a Claim makes, for the requester's own key to sign.")[0].clone(),
                { "name": "submit", "definition": "http://hl7.org/fhir/OperationDefinition/Claim-submit", "documentation": "R4's $submit: POST the Claim (or the signed Parameters from $prepare) as to POST Claim; answered 201 with the ClaimResponse." },
            ],
        }),
        json!({
            "type": "ClaimResponse",
            "interaction": [read, search],
            "searchParam": [param("request", "reference", "ClaimResponse-request", "Claim/{claim id}, once")],
        }),
        json!({
            "type": "Subscription",
            "documentation": "rest-hook subscriptions on AuditEvent?patient={id} or Consent?patient={id}, for those who may read the patient (with a basis in force: no revoked or expired consent). channel.payload application/fhir+json: a history Bundle (the Subscription, then the new resources, each with its ICS23 proof, the Bundle with the certified state); none: an empty POST. Read and deleted by the subscriber only; the search (no parameter) lists the requester's own.",
            "interaction": [read, { "code": "search-type" }, create, { "code": "delete" }],
        }),
        json!({
            "type": "DocumentReference",
            "documentation": "The record locator (IHE MHD style): one DocumentReference per record anchored for the patient at any member, in anchor order, for those who may read the patient. status current, or entered-in-error once the ledger holds the record's erasure; content[0].attachment.url is the custodian gateway's GET /records/{id} (its SetGateway endpoint), size the sealed record's bytes, the extension content-sha256 its anchored SHA-256. Each entry carries the ICS23 proofs of its list index, anchor and custodian gateway; the Bundle the certificate and the proof of the patient's record count. Read without Medledger-Access-Tx: the locator entry of record {id}, proven; with it (RFC 9421 signature, query purpose=…): a vault record of type DocumentReference, released and logged like any vault record.",
            "interaction": [read, search],
            "searchParam": [param("patient", "reference", "clinical-patient", "Patient/{ledger patient id}, once")],
        }),
        json!({
            "type": "Patient",
            "documentation": "Only the operation $everything: GET Patient/{id}/$everything, for those who may read the patient, answers a searchset Bundle read at one certified height with the patient's Consents, AuditEvents (each with its ICS23 proof) and DocumentReferences (the record locator, with their proofs): the first 100 of each kind, in the searches' orders; when a kind has more, an OperationOutcome entry (search.mode outcome, severity information, code incomplete) gives the search URL, pinned to that height, that continues it. No parameters (start, end, _since, _type, _count are 400). No Patient resource is served.",
            "operation": [{ "name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything", "documentation": "The patient's Consents, AuditEvents and DocumentReferences, at most 100 of each." }],
        }),
        json!({
            "type": "OperationDefinition",
            "documentation": "The $prepare operations of Consent and Claim.",
            "interaction": [read],
        }),
    ];
    resources.extend(vault_types);
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-07",
        "publisher": "medledger",
        "kind": "instance",
        "software": { "name": "medledger gateway", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "medledger member gateway", "url": format!("{base}/fhir") },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{ "mode": "server", "documentation": SEARCH_DOCUMENTATION, "security": security(), "resource": resources }],
    })
}

/// `rest.security`: SMART Backend Services (the `SMART-on-FHIR` service), beside RFC 9421
/// signatures and the signed-request token. The endpoints are in
/// `/.well-known/smart-configuration`, as SMART App Launch 2 has them: its older `oauth-uris`
/// extension requires an `authorize` endpoint, which backend services have none of (HAPI's
/// validator refuses the extension without it).
fn security() -> Value {
    json!({
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
            }],
            "text": "SMART Backend Services: client_credentials with a private_key_jwt assertion (ES384 or RS384) from a client registered on the ledger; see /.well-known/smart-configuration",
        }],
        "description": "Every request names its requester: an RFC 9421 signature by a key with a role on the ledger, a bearer token POST /auth/token issued to such a signed request, or a SMART Backend Services token (system/ scopes, enforced per resource and interaction).",
    })
}

/// The OperationDefinition `id` (`Consent-prepare`, `Claim-prepare`), or `None`.
pub fn operation_definition(base: &str, id: &str) -> Option<Value> {
    let (resource, name, signer_in, description) = match id {
        "Consent-prepare" => (
            "Consent",
            "ConsentPrepare",
            true,
            "The tx body that a Consent makes (active: GrantConsent; inactive, with its id: RevokeConsent of that id) at the signer's next sequence, and the exact bytes to sign: \"medledger/tx/v1\" 0x00 len(chain id) chain id txBody. The patient signs them with their Ed25519 key, wherever it is, and POSTs Parameters (txBody, signature, signer) to Consent. The gateway never signs for a patient.",
        ),
        "Claim-prepare" => (
            "Claim",
            "ClaimPrepare",
            false,
            "The SubmitClaim tx body that a Claim makes, for the requesting key (this member's admin or one of its active practitioners of a provider role) at its next sequence, and the exact bytes to sign. The requester signs them and POSTs Parameters (txBody, signature, signer) to Claim, so that the ledger names who billed.",
        ),
        _ => return None,
    };
    let out = |name: &str, ty: &str, doc: &str| json!({ "name": name, "use": "out", "min": 1, "max": "1", "type": ty, "documentation": doc });
    let mut parameters = vec![json!({
        "name": "resource", "use": "in", "min": 1, "max": "1", "type": resource,
        "documentation": format!("The {resource}, posted as the request body itself (not wrapped in Parameters)."),
    })];
    if signer_in {
        parameters.push(json!({
            "name": "signer", "use": "in", "min": 0, "max": "1", "type": "string",
            "documentation": "Query parameter: the hex Ed25519 public key that will sign; by default the key the ledger holds for Consent.patient.",
        }));
    }
    parameters.extend([
        out(
            "txBody",
            "base64Binary",
            "The protobuf TxBody: chain id, the signer's next sequence, the message.",
        ),
        out(
            "signBytes",
            "base64Binary",
            "The bytes to sign with Ed25519.",
        ),
        out("signer", "string", "The hex public key expected to sign."),
        out(
            "sequence",
            "string",
            "The sequence in txBody (decimal): prepare, sign and post one at a time.",
        ),
        json!({
            "name": "outcome", "use": "out", "min": 0, "max": "1", "type": "OperationOutcome",
            "documentation": format!("Present when the mapping accepted elements of the {resource} that the ledger does not record (warning), or read one in the ledger's own terms (information): each issue with its FHIRPath. Nothing in it refuses the {resource}; read it before signing."),
        }),
    ]);
    Some(json!({
        "resourceType": "OperationDefinition",
        "id": id,
        "url": operation_url(base, id),
        "name": name,
        "title": format!("Prepare a {resource} for signing"),
        "status": "active",
        "kind": "operation",
        "publisher": "medledger",
        "description": description,
        "affectsState": false,
        "code": "prepare",
        "resource": [resource],
        "system": false,
        "type": true,
        "instance": false,
        "parameter": parameters,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Each `$prepare` the CapabilityStatement declares is served at its definition's URL.
    #[test]
    fn declared_operations_are_defined() {
        let cap = capability_statement("https://gw.example");
        let ops: Vec<(String, String)> = cap["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                let ty = r["type"].as_str().unwrap().to_string();
                r["operation"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |o| (ty.clone(), o["definition"].as_str().unwrap().to_string()))
            })
            .collect();
        assert_eq!(ops.len(), 4, "{ops:?}");
        // $everything and $submit are R4's own operations: their definitions are HL7's, not
        // served here.
        let (ours, hl7): (Vec<_>, Vec<_>) = ops
            .into_iter()
            .partition(|(_, url)| url.starts_with("https://gw.example/"));
        assert_eq!(
            hl7,
            [
                (
                    "Claim".to_string(),
                    "http://hl7.org/fhir/OperationDefinition/Claim-submit".to_string()
                ),
                (
                    "Patient".to_string(),
                    "http://hl7.org/fhir/OperationDefinition/Patient-everything".to_string()
                )
            ]
        );
        let ops = ours;
        for (ty, url) in ops {
            let id = url
                .strip_prefix("https://gw.example/fhir/OperationDefinition/")
                .unwrap();
            let d = operation_definition("https://gw.example", id).unwrap();
            assert_eq!(d["url"], url.as_str());
            assert_eq!(d["code"], "prepare");
            assert_eq!(d["resource"][0], ty.as_str());
        }
        assert!(operation_definition("https://gw.example", "Patient-everything").is_none());
    }
}
