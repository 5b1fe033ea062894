//! Claim: a FHIR R4 Claim read into the ledger's SubmitClaim, and the ledger's claim as a
//! ClaimResponse (docs/fhir.md, "Claim").

use medledger_tx::pb::{
    Claim, ClaimItem, ClaimProcedure, ClaimStatus, OtherCoverage, Payee, ProcedureSystem,
    SubmitClaim,
};
use serde_json::{json, Map, Value};

use super::read::{Issues, Treat};
use super::time::{date, fhir_span, instant, not_a_date, service_date};
use super::{
    record_id, reference_id, Issue, Mapped, Refusal, Res, ADJUDICATION, CLAIM_INFO_SYSTEM,
    CLAIM_TYPE, DID_SYSTEM, LEDGER_CODE_SYSTEM, PAYMENT_TYPE, RECORD_SYSTEM,
};
use medledger_tx::check::{check_id, is_icd10, is_procedure_code, procedure_system_name};
use medledger_tx::limits::{
    MAX_CLAIM_CARE_TEAM, MAX_CLAIM_DIAGNOSES, MAX_CLAIM_OTHER_COVERAGE, MAX_CLAIM_PROCEDURES,
};

/// Money in minor units as a FHIR `Money` (value in major units; the ledger keeps no currency,
/// so none is claimed). The decimal is written as text and read back as a JSON number, exact for
/// any amount below 2^53 minor units.
pub fn money(minor: u64) -> Value {
    let text = format!("{}.{:02}", minor / 100, minor % 100);
    let value = serde_json::from_str::<Value>(&text).unwrap_or_else(|_| json!(minor / 100));
    json!({ "value": value })
}

/// A FHIR decimal (a JSON number) as minor units: at most two decimals, non-negative.
pub fn minor_units(v: &Value, at: &str) -> Res<u64> {
    let n = v
        .as_number()
        .ok_or_else(|| Issue::invalid(at, "must be a number"))?;
    let s = n.to_string();
    let bad = || {
        Issue::value(
            at,
            format!("{s} is not a non-negative amount with at most two decimals"),
        )
    };
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if frac.len() > 2 || whole.starts_with('-') || s.contains(['e', 'E']) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

fn positive_integer(v: &Value, at: &str) -> Res<u64> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    // FHIR decimals like 1.0 are a whole quantity too.
    let units = minor_units(v, at)?;
    if units % 100 != 0 {
        return Err(Issue::value(at, "the ledger bills whole quantities"));
    }
    Ok(units / 100)
}

/// The elements of a Claim. Those not named have no field in `SubmitClaim` and are refused
/// (`referral`, `accident`, …): each would be lost.
const CLAIM_ELEMENTS: &[(&str, Treat)] = &[
    ("resourceType", Treat::Read),
    ("id", Treat::Quiet),
    ("meta", Treat::Quiet),
    (
        "implicitRules",
        Treat::Refuse("rules the ledger does not know would change how the claim reads"),
    ),
    ("language", Treat::Quiet),
    ("text", Treat::Quiet),
    ("identifier", Treat::Quiet),
    ("status", Treat::Read),
    ("type", Treat::Quiet),
    ("use", Treat::Read),
    ("patient", Treat::Read),
    ("billablePeriod", Treat::Read),
    ("created", Treat::Read),
    ("insurer", Treat::Read),
    ("provider", Treat::Read),
    ("priority", Treat::Quiet),
    ("payee", Treat::Read),
    ("careTeam", Treat::Read),
    ("diagnosis", Treat::Read),
    ("supportingInfo", Treat::Read),
    ("procedure", Treat::Read),
    ("insurance", Treat::Read),
    ("item", Treat::Read),
    ("total", Treat::Read),
];

/// The elements of `Claim.payee`.
const PAYEE_ELEMENTS: &[(&str, Treat)] = &[
    ("type", Treat::Read),
    ("party", Treat::Read),
    (
        "resource",
        Treat::Warn("not recorded: the payee is the provider member or the patient"),
    ),
];

/// R4's payee types (`Claim.payee.type`).
pub const PAYEE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/payeetype";

/// The elements of a `Claim.procedure`.
const PROCEDURE_ELEMENTS: &[(&str, Treat)] = &[
    ("sequence", Treat::Quiet),
    (
        "type",
        Treat::Warn("not recorded: the ledger records the procedures in order"),
    ),
    ("date", Treat::Read),
    ("procedureCodeableConcept", Treat::Read),
    (
        "procedureReference",
        Treat::Refuse("the ledger records a procedure as its code (procedureCodeableConcept), not as a Procedure it cannot read"),
    ),
    (
        "udi",
        Treat::Refuse("the ledger records no devices: a device used would be lost"),
    ),
];

/// Procedure code systems (`Claim.procedure`), by their FHIR URIs (HL7 terminology: ICD-10
/// Procedure Codes, SNOMED CT, CPT).
pub const PROCEDURE_SYSTEMS: [(&str, ProcedureSystem); 3] = [
    (
        "http://www.cms.gov/Medicare/Coding/ICD10",
        ProcedureSystem::Icd10Pcs,
    ),
    ("http://snomed.info/sct", ProcedureSystem::SnomedCt),
    ("http://www.ama-assn.org/go/cpt", ProcedureSystem::Cpt),
];

/// The FHIR URI of a procedure system.
fn procedure_uri(system: i32) -> &'static str {
    PROCEDURE_SYSTEMS
        .iter()
        .find(|(_, s)| *s as i32 == system)
        .map(|(uri, _)| *uri)
        .unwrap_or("")
}

/// The elements of a `Claim.insurance`.
const INSURANCE_ELEMENTS: &[(&str, Treat)] = &[
    ("sequence", Treat::Read),
    ("focal", Treat::Read),
    (
        "identifier",
        Treat::Warn("not recorded: the ledger names a claim by its own id"),
    ),
    ("coverage", Treat::Read),
    (
        "businessArrangement",
        Treat::Warn("not recorded: the policy is the arrangement the ledger adjudicates by"),
    ),
    (
        "preAuthRef",
        Treat::Warn("not recorded: a preauthorization on the ledger is a claim of its own (use preauthorization)"),
    ),
    (
        "claimResponse",
        Treat::Warn("not recorded: another insurer's adjudication is not the ledger's"),
    ),
];

/// The elements of a `Claim.item`.
const ITEM_ELEMENTS: &[(&str, Treat)] = &[
    ("sequence", Treat::Quiet),
    ("productOrService", Treat::Read),
    ("modifier", Treat::Read),
    ("servicedDate", Treat::Read),
    ("quantity", Treat::Read),
    ("unitPrice", Treat::Read),
    ("net", Treat::Quiet),
    ("careTeamSequence", Treat::Warn(WHOLE_CLAIM)),
    ("diagnosisSequence", Treat::Warn(WHOLE_CLAIM)),
];

/// Why an item's links to the care team and diagnoses are not recorded.
const WHOLE_CLAIM: &str = "not recorded: the ledger records the care team and the diagnoses of \
                           the whole claim";

/// The elements of a `Claim.diagnosis`.
const DIAGNOSIS_ELEMENTS: &[(&str, Treat)] = &[
    ("sequence", Treat::Quiet),
    ("diagnosisCodeableConcept", Treat::Read),
    (
        "diagnosisReference",
        Treat::Refuse("the ledger records a diagnosis as its ICD-10 code (diagnosisCodeableConcept), not as a Condition it cannot read"),
    ),
    (
        "type",
        Treat::Warn("not recorded: the ledger records the diagnoses in order, the first the principal one"),
    ),
    ("onAdmission", Treat::Warn("not recorded: the ledger records the diagnosis code")),
    ("packageCode", Treat::Warn("not recorded: the ledger records the diagnosis code")),
];

/// The elements of a `Claim.careTeam`.
const CARE_TEAM_ELEMENTS: &[(&str, Treat)] = &[
    ("sequence", Treat::Quiet),
    ("provider", Treat::Read),
    (
        "responsible",
        Treat::Warn("not recorded: the ledger records who is on the care team"),
    ),
    (
        "role",
        Treat::Warn("not recorded: the ledger's register holds each practitioner's role"),
    ),
    (
        "qualification",
        Treat::Warn("not recorded: the ledger's register holds each practitioner's licence"),
    ),
];

/// ICD-10 code systems (`Claim.diagnosis`): WHO's and the US clinical modification.
pub const ICD10_SYSTEMS: [&str; 2] = [
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-10-cm",
];

/// The elements of a `Claim.supportingInfo`.
const INFO_ELEMENTS: &[(&str, Treat)] = &[
    ("sequence", Treat::Quiet),
    ("category", Treat::Read),
    ("valueReference", Treat::Read),
];

/// Reads a FHIR R4 Claim into the ledger's SubmitClaim and the `provider` it names (a member,
/// checked by the caller: the provider is whoever signs), with warnings; refused with every
/// issue found (docs/fhir.md, "Claim: FHIR → ledger").
pub fn map_claim(v: &Value) -> Result<Mapped<(SubmitClaim, Option<String>)>, Refusal> {
    let mut is = Issues::default();
    let claim = claim_read(&mut is, v);
    is.finish("Claim", claim)
}

/// Reads a FHIR R4 Claim ([`map_claim`] without its warnings).
pub fn claim_from_fhir(v: &Value) -> Result<(SubmitClaim, Option<String>), Refusal> {
    map_claim(v).map(|m| m.value)
}

fn claim_read(is: &mut Issues, v: &Value) -> Option<(SubmitClaim, Option<String>)> {
    let o = is.obj(v, "Claim")?;
    if o.get("resourceType").and_then(Value::as_str) != Some("Claim") {
        is.value("Claim.resourceType", "must be \"Claim\"");
        return None;
    }
    is.elements(o, "Claim", CLAIM_ELEMENTS);
    let preauthorization = claim_kind(is, o);
    let patient = claim_reference(is, o, "patient", "Patient/");
    let insurer = claim_reference(is, o, "insurer", "Organization/");
    let provider = o
        .get("provider")
        .and_then(|p| p.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| reference_id(r, "Organization/"))
        .map(str::to_string);
    let (policy, other_coverage) = claim_insurance(is, o, insurer.as_deref()).unzip();
    let (service, source) = claim_service_date(is, o);
    let items = claim_items(is, o, service, &source);
    let total = claim_total(is, o, items.as_deref());
    let (evidence, record_ids) = claim_supporting(is, o, patient.as_deref());
    let diagnoses = claim_diagnoses(is, o);
    let care_team = claim_care_team(is, o);
    let payee = claim_payee(is, o, provider.as_deref(), patient.as_deref());
    let procedures = claim_procedures(is, o, service);
    let claim = SubmitClaim {
        patient_id: patient?,
        insurer: insurer?,
        policy_id: policy?,
        service_date: service?,
        items: items?,
        record_ids,
        total: total?,
        evidence,
        diagnoses: diagnoses?,
        care_team: care_team?,
        preauthorization,
        payee: payee? as i32,
        procedures: procedures?,
        other_coverage: other_coverage?,
    };
    Some((claim, provider))
}

/// `status` (active), `use` (claim, or preauthorization: `true`), and the dates the ledger does
/// not record but checks.
fn claim_kind(is: &mut Issues, o: &Map<String, Value>) -> bool {
    let mut preauthorization = false;
    if let Some(s) = o.get("status") {
        match is.string(s, "Claim.status") {
            Some("active") | None => {}
            Some(other) => is.value(
                "Claim.status",
                format!("only an active claim is submitted, not {other:?}"),
            ),
        }
    }
    if let Some(u) = o.get("use") {
        match is.string(u, "Claim.use") {
            Some("claim") | None => {}
            Some("preauthorization") => preauthorization = true,
            Some("predetermination") => is.not_supported(
                "Claim.use",
                "a predetermination (an estimate): the ledger records claims and preauthorizations",
            ),
            Some(other) => is.value(
                "Claim.use",
                format!(
                    "R4's uses are claim, preauthorization and predetermination, not {other:?}"
                ),
            ),
        }
    }
    let end = o.get("billablePeriod").and_then(|b| b.get("end"));
    for (at, v) in [
        ("Claim.created", o.get("created")),
        ("Claim.billablePeriod.end", end),
    ] {
        if let Some(s) = v.and_then(|v| is.string(v, at)) {
            if fhir_span(s).is_none() {
                is.push(not_a_date(s, at));
            }
        }
    }
    preauthorization
}

/// `Claim.{key}.reference`: `{prefix}{id}`.
fn claim_reference(
    is: &mut Issues,
    o: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Option<String> {
    let at = format!("Claim.{key}");
    let rv = is.need(o, "Claim", key, &format!("a reference {prefix}{{id}}"))?;
    let ro = is.obj(rv, &at)?;
    let r = is.need_str(ro, &at, "reference", &format!("{prefix}{{id}}"))?;
    let id = reference_id(r, prefix);
    if id.is_none() {
        is.value(
            format!("{at}.reference"),
            format!("must be {prefix}{{id}}, not {r:?}"),
        );
    }
    id.map(str::to_string)
}

/// `insurance`: exactly one `focal: true`, whose coverage names the policy of `Claim.insurer`
/// the claim is adjudicated by; the others (at most [`MAX_CLAIM_OTHER_COVERAGE`]) are the
/// patient's other coverage, recorded in sequence order, each naming its insurer
/// ([`other_coverage`]).
fn claim_insurance(
    is: &mut Issues,
    o: &Map<String, Value>,
    insurer: Option<&str>,
) -> Option<(String, Vec<OtherCoverage>)> {
    let at = "Claim.insurance";
    let iv = is.need(
        o,
        "Claim",
        "insurance",
        "the coverage the claim is made against",
    )?;
    let ins = is.arr(iv, at)?;
    let mut focal: Option<Option<String>> = None;
    let mut others: Vec<(u64, Option<OtherCoverage>, String)> = Vec::new();
    let mut all = true;
    let mut last_sequence = 0u64;
    for (i, v) in ins.iter().enumerate() {
        let iat = format!("{at}[{i}]");
        let Some(io) = is.obj(v, &iat) else {
            all = false;
            continue;
        };
        is.elements(io, &iat, INSURANCE_ELEMENTS);
        let sequence = match io.get("sequence") {
            None => u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1),
            Some(n) => match n.as_u64().filter(|n| *n > 0) {
                Some(n) => n,
                None => {
                    is.value(format!("{iat}.sequence"), "must be a positive integer");
                    all = false;
                    continue;
                }
            },
        };
        if sequence <= last_sequence {
            is.value(
                format!("{iat}.sequence"),
                format!("{sequence} does not follow {last_sequence}: list the insurances in sequence order"),
            );
            all = false;
        }
        last_sequence = sequence;
        let is_focal = match io.get("focal") {
            // One insurance is the one adjudicated, focal or not said.
            None if ins.len() == 1 => true,
            None => {
                is.required(
                    format!("{iat}.focal"),
                    "with several insurances, say which one (focal: true) the claim is adjudicated by",
                );
                all = false;
                continue;
            }
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                is.value(format!("{iat}.focal"), "must be true or false");
                all = false;
                continue;
            }
        };
        if is_focal {
            if focal.is_some() {
                is.business_rule(
                    format!("{iat}.focal"),
                    "a second focal insurance: the ledger adjudicates a claim by one coverage; mark the others focal: false (recorded as other coverage)",
                );
                all = false;
                continue;
            }
            focal = Some(focal_policy(is, io, &iat));
        } else if others.len() >= MAX_CLAIM_OTHER_COVERAGE {
            is.not_supported(
                &iat,
                format!("the ledger records at most {MAX_CLAIM_OTHER_COVERAGE} other coverages per claim"),
            );
            all = false;
        } else {
            others.push((sequence, other_coverage(is, io, &iat), iat));
        }
    }
    let Some(focal) = focal else {
        if all {
            is.required(
                at,
                "no insurance is focal: mark the one the claim is adjudicated by focal: true",
            );
        }
        return None;
    };
    let mut out: Vec<OtherCoverage> = Vec::new();
    for (_, other, iat) in others {
        match other {
            Some(c)
                if Some(c.insurer.as_str()) == insurer && Some(&c.policy_id) == focal.as_ref() =>
            {
                is.value(
                    format!("{iat}.coverage"),
                    "the focal coverage again: other coverage is another insurer or policy",
                );
                all = false;
            }
            Some(c) if out.contains(&c) => {
                is.value(
                    format!("{iat}.coverage"),
                    format!("{} {} is listed twice", c.insurer, c.policy_id),
                );
                all = false;
            }
            Some(c) => out.push(c),
            None => all = false,
        }
    }
    let policy = focal?;
    all.then_some((policy, out))
}

/// The focal insurance's coverage: `Coverage/{policy id}` or `identifier.value`.
fn focal_policy(is: &mut Issues, io: &Map<String, Value>, iat: &str) -> Option<String> {
    let cat = format!("{iat}.coverage");
    let why = "the insurer's policy: Coverage/{policy id} or identifier.value";
    let c = is.need(io, iat, "coverage", why)?;
    if let Some(id) = c
        .get("identifier")
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
    {
        return Some(id.to_string());
    }
    let Some(r) = c.get("reference").and_then(Value::as_str) else {
        is.required(&cat, why);
        return None;
    };
    let policy = reference_id(r, "Coverage/");
    if policy.is_none() {
        is.value(
            format!("{cat}.reference"),
            format!("{r:?}: the insurer's policy is Coverage/{{policy id}} (or identifier.value)"),
        );
    }
    policy.map(str::to_string)
}

/// Another coverage (`focal: false`): its policy as `coverage.identifier.value`, its insurer as
/// the identifier's `assigner` (`Organization/{insurer member id}`): a Coverage reference alone
/// names no insurer the ledger knows.
fn other_coverage(is: &mut Issues, io: &Map<String, Value>, iat: &str) -> Option<OtherCoverage> {
    let cat = format!("{iat}.coverage");
    let why = "the other coverage: {identifier: {value: POLICY, assigner: {reference: Organization/INSURER}}}";
    let c = is.need(io, iat, "coverage", why)?;
    let identifier = c.get("identifier");
    let policy = identifier
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
        .filter(|p| check_id("policy", p).is_ok());
    let insurer = identifier
        .and_then(|i| i.get("assigner"))
        .and_then(|a| a.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| reference_id(r, "Organization/"));
    match (policy, insurer) {
        (Some(policy_id), Some(insurer)) => Some(OtherCoverage {
            insurer: insurer.to_string(),
            policy_id: policy_id.to_string(),
        }),
        _ => {
            is.value(
                format!("{cat}.identifier"),
                format!("other coverage is recorded as its insurer and policy: {why}"),
            );
            None
        }
    }
}

/// The day of service: `billablePeriod.start`, else `item[0].servicedDate`; and the FHIRPath it
/// came from.
fn claim_service_date(is: &mut Issues, o: &Map<String, Value>) -> (Option<u64>, String) {
    let from_period = o.get("billablePeriod").and_then(|b| b.get("start"));
    let from_item = o
        .get("item")
        .and_then(|i| i.get(0))
        .and_then(|i| i.get("servicedDate"));
    let (v, at) = match (from_period, from_item) {
        (Some(s), _) => (s, "Claim.billablePeriod.start"),
        (None, Some(s)) => (s, "Claim.item[0].servicedDate"),
        (None, None) => {
            is.required(
                "Claim.billablePeriod.start",
                "the day of service (billablePeriod.start or item.servicedDate)",
            );
            return (None, String::new());
        }
    };
    let day = is.string(v, at).and_then(|s| is.keep(service_date(s, at)));
    (day, at.to_string())
}

/// `item`: at least one, each read whole.
fn claim_items(
    is: &mut Issues,
    o: &Map<String, Value>,
    service: Option<u64>,
    source: &str,
) -> Option<Vec<ClaimItem>> {
    let iv = is.need(o, "Claim", "item", "at least one item")?;
    let items = is.arr(iv, "Claim.item")?;
    let mut out = Vec::new();
    let mut all = true;
    for (i, it) in items.iter().enumerate() {
        match claim_item(is, it, i, service, source) {
            Some(item) => out.push(item),
            None => all = false,
        }
    }
    all.then_some(out)
}

fn claim_item(
    is: &mut Issues,
    it: &Value,
    i: usize,
    service: Option<u64>,
    source: &str,
) -> Option<ClaimItem> {
    let at = format!("Claim.item[{i}]");
    let io = is.obj(it, &at)?;
    is.elements(io, &at, ITEM_ELEMENTS);
    let dat = format!("{at}.servicedDate");
    if let Some(d) = io.get("servicedDate").filter(|_| dat != source) {
        let day = is
            .string(d, &dat)
            .and_then(|s| is.keep(service_date(s, &dat)));
        if let (Some(day), Some(service)) = (day, service) {
            if day / 86_400 != service / 86_400 {
                is.not_supported(
                    dat,
                    "a ledger claim has one day of service: send one claim for each day",
                );
            }
        }
    }
    let code = claim_item_code(is, io, &at);
    let modifier = claim_item_modifier(is, io, &at);
    let quantity = claim_item_quantity(is, io, &at);
    let unit_price = claim_item_price(is, io, &at);
    Some(ClaimItem {
        service_code: code?,
        quantity: quantity?,
        unit_price: unit_price?,
        modifier: modifier?,
    })
}

/// `item.productOrService`: the code of its first coding, whatever the system.
fn claim_item_code(is: &mut Issues, io: &Map<String, Value>, at: &str) -> Option<String> {
    let pat = format!("{at}.productOrService");
    let pv = is.need(io, at, "productOrService", "the service billed")?;
    let pairs = is.concept(pv, &pat)?;
    let code = pairs.first().map(|(_, c)| c.to_string());
    if code.is_none() {
        is.required(format!("{pat}.coding[0].code"), "the service's code");
    }
    code
}

/// `item.modifier`: at most one; its first coding's code.
fn claim_item_modifier(is: &mut Issues, io: &Map<String, Value>, at: &str) -> Option<String> {
    let Some(m) = io.get("modifier") else {
        return Some(String::new());
    };
    let mat = format!("{at}.modifier");
    let ms = is.arr(m, &mat)?;
    for j in 1..ms.len() {
        is.not_supported(
            format!("{mat}[{j}]"),
            "the ledger records one modifier per item",
        );
    }
    let pairs = is.concept(ms.first()?, &format!("{mat}[0]"))?;
    Some(
        pairs
            .first()
            .map(|(_, c)| c.to_string())
            .unwrap_or_default(),
    )
}

/// `item.quantity.value`: a whole number; absent, 1.
fn claim_item_quantity(is: &mut Issues, io: &Map<String, Value>, at: &str) -> Option<u64> {
    let Some(q) = io.get("quantity") else {
        return Some(1);
    };
    let qat = format!("{at}.quantity");
    let qo = is.obj(q, &qat)?;
    let v = is.need(qo, &qat, "value", "how many")?;
    is.keep(positive_integer(v, &format!("{qat}.value")))
}

/// `item.unitPrice.value` in minor units.
fn claim_item_price(is: &mut Issues, io: &Map<String, Value>, at: &str) -> Option<u64> {
    let pat = format!("{at}.unitPrice");
    let p = is.need(io, at, "unitPrice", "the price of one unit")?;
    let po = is.obj(p, &pat)?;
    let v = is.need(po, &pat, "value", "the amount")?;
    is.keep(minor_units(v, &format!("{pat}.value")))
}

/// `total.value`, else Σ quantity × unit price; a total that is not that sum is refused here
/// as the ledger would (`TOTALS_MISMATCH`).
fn claim_total(
    is: &mut Issues,
    o: &Map<String, Value>,
    items: Option<&[ClaimItem]>,
) -> Option<u64> {
    let sum = items.map(|items| {
        items.iter().try_fold(0u64, |acc, i| {
            i.quantity
                .checked_mul(i.unit_price)
                .and_then(|x| acc.checked_add(x))
        })
    });
    if sum == Some(None) {
        is.value("Claim.item", "the total of the items overflows");
    }
    let Some(t) = o.get("total") else {
        return sum.flatten();
    };
    let to = is.obj(t, "Claim.total")?;
    let v = is.need(to, "Claim.total", "value", "the amount")?;
    let total = is.keep(minor_units(v, "Claim.total.value"))?;
    if let Some(Some(sum)) = sum {
        if sum != total {
            is.business_rule(
                "Claim.total",
                format!(
                    "the total ({}) is not the sum of quantity × unit price over the items ({})",
                    money(total)["value"],
                    money(sum)["value"]
                ),
            );
        }
    }
    Some(total)
}

/// `diagnosis`: each an ICD-10 code (`diagnosisCodeableConcept`, a coding of an
/// [`ICD10_SYSTEMS`] system), in order; at most the ledger's limit, none twice.
fn claim_diagnoses(is: &mut Issues, o: &Map<String, Value>) -> Option<Vec<String>> {
    let Some(dv) = o.get("diagnosis") else {
        return Some(Vec::new());
    };
    let ds = is.arr(dv, "Claim.diagnosis")?;
    let mut out = Vec::new();
    let mut all = true;
    for (i, d) in ds.iter().enumerate() {
        let at = format!("Claim.diagnosis[{i}]");
        if i >= MAX_CLAIM_DIAGNOSES {
            is.not_supported(
                &at,
                format!("the ledger records at most {MAX_CLAIM_DIAGNOSES} diagnoses per claim"),
            );
            all = false;
            continue;
        }
        match claim_diagnosis(is, d, &at) {
            Some(code) if out.contains(&code) => {
                is.value(
                    format!("{at}.diagnosisCodeableConcept"),
                    format!("{code} is listed twice"),
                );
                all = false;
            }
            Some(code) => out.push(code),
            None => all = false,
        }
    }
    all.then_some(out)
}

fn claim_diagnosis(is: &mut Issues, d: &Value, at: &str) -> Option<String> {
    let o = is.obj(d, at)?;
    is.elements(o, at, DIAGNOSIS_ELEMENTS);
    let cat = format!("{at}.diagnosisCodeableConcept");
    let c = is.need(
        o,
        at,
        "diagnosisCodeableConcept",
        "the diagnosis as its ICD-10 code",
    )?;
    let pairs = is.concept(c, &cat)?;
    let Some((_, code)) = pairs.iter().find(|(s, _)| ICD10_SYSTEMS.contains(s)) else {
        is.value(
            format!("{cat}.coding"),
            format!(
                "no ICD-10 coding ({}): the ledger records ICD-10 diagnoses",
                ICD10_SYSTEMS.join(" or ")
            ),
        );
        return None;
    };
    if !is_icd10(code) {
        is.value(
            format!("{cat}.coding"),
            format!("{code:?} is not an ICD-10 code: a letter, a digit, a digit or letter, then optionally a dot and 1-4 digits or letters (J45.909)"),
        );
        return None;
    }
    Some(code.to_string())
}

/// `careTeam`: each `provider` a practitioner named by their DID
/// (`{identifier: {system: urn:ietf:rfc:3986, value: did:…}}`); the ledger checks that each is
/// an active practitioner of the provider.
fn claim_care_team(is: &mut Issues, o: &Map<String, Value>) -> Option<Vec<String>> {
    let Some(tv) = o.get("careTeam") else {
        return Some(Vec::new());
    };
    let team = is.arr(tv, "Claim.careTeam")?;
    let mut out: Vec<String> = Vec::new();
    let mut all = true;
    for (i, t) in team.iter().enumerate() {
        let at = format!("Claim.careTeam[{i}]");
        if i >= MAX_CLAIM_CARE_TEAM {
            is.not_supported(
                &at,
                format!(
                    "the ledger records at most {MAX_CLAIM_CARE_TEAM} practitioners per care team"
                ),
            );
            all = false;
            continue;
        }
        let did = is.obj(t, &at).and_then(|to| {
            is.elements(to, &at, CARE_TEAM_ELEMENTS);
            let p = is.need(to, &at, "provider", "the practitioner, by DID")?;
            care_team_did(is, p, &format!("{at}.provider"))
        });
        match did {
            Some(did) if out.contains(&did) => {
                is.value(format!("{at}.provider"), format!("{did} is listed twice"));
                all = false;
            }
            Some(did) => out.push(did),
            None => all = false,
        }
    }
    all.then_some(out)
}

/// A care team member's reference: a DID identifier (a practitioner's ledger id is a DID, which
/// is no FHIR id).
fn care_team_did(is: &mut Issues, p: &Value, at: &str) -> Option<String> {
    let po = is.obj(p, at)?;
    let identifier = po.get("identifier").and_then(Value::as_object);
    let did = identifier
        .filter(|i| i.get("system").and_then(Value::as_str) == Some(DID_SYSTEM))
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
        .filter(|v| v.starts_with("did:") && check_id("care_team", v).is_ok());
    if did.is_none() {
        is.value(
            at,
            format!("a care team member is a practitioner named by their DID: {{identifier: {{system: {DID_SYSTEM}, value: did:medledger:…}}}} (a reference to a Practitioner resource names no one the ledger knows)"),
        );
    }
    did.map(str::to_string)
}

/// `payee`: `type` provider (the default when absent) or subscriber (the patient); `other` is
/// refused. A `party`, when given, must be the claim's provider (`Organization/{id}`) or its
/// patient (`Patient/{id}`) respectively.
fn claim_payee(
    is: &mut Issues,
    o: &Map<String, Value>,
    provider: Option<&str>,
    patient: Option<&str>,
) -> Option<Payee> {
    let Some(pv) = o.get("payee") else {
        return Some(Payee::Provider);
    };
    let at = "Claim.payee";
    let po = is.obj(pv, at)?;
    is.elements(po, at, PAYEE_ELEMENTS);
    let tat = format!("{at}.type");
    let t = is.need(po, at, "type", "provider or subscriber")?;
    let pairs = is.concept(t, &tat)?;
    // R4's examples give the code without its system; a code of another system is not one.
    let code = pairs
        .iter()
        .find(|(s, _)| s.is_empty() || *s == PAYEE_TYPE)
        .map(|(_, c)| *c);
    let payee = match code {
        Some("provider") => Payee::Provider,
        Some("subscriber") => Payee::Subscriber,
        Some("other") => {
            is.not_supported(
                &tat,
                "a payee other than the provider or the subscriber (the patient): the ledger pays one of the claim's parties",
            );
            return None;
        }
        _ => {
            is.value(
                format!("{tat}.coding"),
                format!("the payee is provider or subscriber ({PAYEE_TYPE})"),
            );
            return None;
        }
    };
    let Some(party) = po.get("party") else {
        return Some(payee);
    };
    let pat = format!("{at}.party");
    let (prefix, expected, who) = match payee {
        Payee::Subscriber => ("Patient/", patient, "the claim's patient"),
        _ => ("Organization/", provider, "the claim's provider"),
    };
    let named = party
        .get("reference")
        .and_then(Value::as_str)
        .and_then(|r| reference_id(r, prefix));
    // The party must be the party the claim names (its provider, which the gateway checks
    // against its member; or its patient).
    let ok = matches!((named, expected), (Some(n), Some(e)) if n == e);
    if !ok {
        is.business_rule(
            &pat,
            format!(
                "a {} payee is {who}: {prefix}{{id}} as in the claim, or no party",
                code.unwrap_or("")
            ),
        );
        return None;
    }
    Some(payee)
}

/// `procedure`: 0-12 codes of ICD-10-PCS, SNOMED CT or CPT ([`PROCEDURE_SYSTEMS`]), distinct,
/// each performed on the claim's day of service (`date`, when given).
fn claim_procedures(
    is: &mut Issues,
    o: &Map<String, Value>,
    service: Option<u64>,
) -> Option<Vec<ClaimProcedure>> {
    let Some(pv) = o.get("procedure") else {
        return Some(Vec::new());
    };
    let ps = is.arr(pv, "Claim.procedure")?;
    let mut out: Vec<ClaimProcedure> = Vec::new();
    let mut all = true;
    for (i, p) in ps.iter().enumerate() {
        let at = format!("Claim.procedure[{i}]");
        if i >= MAX_CLAIM_PROCEDURES {
            is.not_supported(
                &at,
                format!("the ledger records at most {MAX_CLAIM_PROCEDURES} procedures per claim"),
            );
            all = false;
            continue;
        }
        match claim_procedure(is, p, &at, service) {
            Some(c) if out.contains(&c) => {
                is.value(
                    format!("{at}.procedureCodeableConcept"),
                    format!("{} is listed twice", c.code),
                );
                all = false;
            }
            Some(c) => out.push(c),
            None => all = false,
        }
    }
    all.then_some(out)
}

fn claim_procedure(
    is: &mut Issues,
    p: &Value,
    at: &str,
    service: Option<u64>,
) -> Option<ClaimProcedure> {
    let o = is.obj(p, at)?;
    is.elements(o, at, PROCEDURE_ELEMENTS);
    let mut ok = true;
    if let Some(d) = o.get("date") {
        let dat = format!("{at}.date");
        match is
            .string(d, &dat)
            .and_then(|s| is.keep(service_date(s, &dat)))
        {
            Some(day) if Some(day) != service && service.is_some() => {
                is.business_rule(
                    dat,
                    "a procedure is recorded on the claim's day of service: a procedure on another day goes on the claim for that day",
                );
                ok = false;
            }
            Some(_) => {}
            None => ok = false,
        }
    }
    let cat = format!("{at}.procedureCodeableConcept");
    let c = is.need(
        o,
        at,
        "procedureCodeableConcept",
        "the procedure as an ICD-10-PCS, SNOMED CT or CPT code",
    )?;
    let pairs = is.concept(c, &cat)?;
    let found = pairs.iter().find_map(|(s, code)| {
        PROCEDURE_SYSTEMS
            .iter()
            .find(|(uri, _)| uri == s)
            .map(|(_, system)| (*system, *code))
    });
    let Some((system, code)) = found else {
        let uris: Vec<&str> = PROCEDURE_SYSTEMS.iter().map(|(u, _)| *u).collect();
        is.value(
            format!("{cat}.coding"),
            format!(
                "no ICD-10-PCS, SNOMED CT or CPT coding ({}): the ledger records procedures by those codes",
                uris.join(", ")
            ),
        );
        return None;
    };
    if !is_procedure_code(system, code) {
        is.value(
            format!("{cat}.coding"),
            format!("{code:?} is not a {} code", procedure_system_name(system)),
        );
        return None;
    }
    ok.then(|| ClaimProcedure {
        system: system as i32,
        code: code.to_string(),
    })
}

/// `supportingInfo`: the ledger's evidence (access events) and records.
fn claim_supporting(
    is: &mut Issues,
    o: &Map<String, Value>,
    patient: Option<&str>,
) -> (Vec<u64>, Vec<String>) {
    let mut evidence = Vec::new();
    let mut records = Vec::new();
    let Some(infos) = o
        .get("supportingInfo")
        .and_then(|s| is.arr(s, "Claim.supportingInfo"))
    else {
        return (evidence, records);
    };
    for (i, s) in infos.iter().enumerate() {
        let at = format!("Claim.supportingInfo[{i}]");
        let Some(so) = is.obj(s, &at) else {
            continue;
        };
        is.elements(so, &at, INFO_ELEMENTS);
        let why = "access-event or record (urn:medledger:claim-info)";
        let Some(cat) = is
            .need(so, &at, "category", why)
            .and_then(|c| is.coded(c, &format!("{at}.category"), CLAIM_INFO_SYSTEM))
        else {
            continue;
        };
        let Some(r) = is.need(so, &at, "valueReference", "the access event or record") else {
            continue;
        };
        let rat = format!("{at}.valueReference");
        match cat {
            "access-event" => {
                if let Some(n) = evidence_index(is, r, &rat, patient) {
                    evidence.push(n);
                }
            }
            "record" => match record_id(r) {
                Some(id) => records.push(id.to_string()),
                None => is.value(
                    format!("{rat}.identifier"),
                    format!("a record is an identifier with system {RECORD_SYSTEM}"),
                ),
            },
            other => is.value(
                format!("{at}.category"),
                format!("the ledger records access-event and record, not {other:?}"),
            ),
        }
    }
    (evidence, records)
}

/// The index of an access event of `patient` named `AuditEvent/{patient}-{index}` (the ids the
/// AuditEvent search gives).
fn evidence_index(is: &mut Issues, r: &Value, rat: &str, patient: Option<&str>) -> Option<u64> {
    let at = format!("{rat}.reference");
    let Some(id) = r
        .get("reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("AuditEvent/"))
    else {
        is.value(at, "must be AuditEvent/{patient id}-{event index}");
        return None;
    };
    let patient = patient?;
    let index = id
        .strip_prefix(&format!("{patient}-"))
        .and_then(|n| n.parse::<u64>().ok());
    if index.is_none() {
        is.value(
            at,
            "evidence must be an access event of the claim's patient",
        );
    }
    index
}

/// `Claim.use` / `ClaimResponse.use` of a ledger claim.
fn claim_use(c: &Claim) -> &'static str {
    if c.preauthorization {
        "preauthorization"
    } else {
        "claim"
    }
}

fn status_outcome(s: i32) -> (&'static str, &'static str) {
    match ClaimStatus::try_from(s).unwrap_or(ClaimStatus::Unspecified) {
        ClaimStatus::Pending => ("queued", "pending: the insurer decides"),
        ClaimStatus::Approved => ("complete", "approved"),
        ClaimStatus::PartiallyApproved => ("partial", "partially approved"),
        ClaimStatus::Denied => ("complete", "denied"),
        ClaimStatus::Paid => ("complete", "approved and paid"),
        ClaimStatus::Appealed => ("queued", "appealed: the insurer decides again"),
        ClaimStatus::Unspecified => ("error", "unknown status"),
    }
}

fn adjudication(category: &str, amount: u64) -> Value {
    json!({
        "category": { "coding": [{ "system": ADJUDICATION, "code": category }] },
        "amount": money(amount),
    })
}

/// The ledger's claim as a FHIR R4 ClaimResponse (`created` is the submitting block's time).
pub fn claim_response(c: &Claim, created: u64) -> Value {
    let (outcome, disposition) = status_outcome(c.status);
    let items: Vec<Value> = c
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let claimed = item.quantity.saturating_mul(item.unit_price);
            let mut adj = vec![adjudication("submitted", claimed)];
            if let Some(d) = c.decisions.get(i) {
                adj.push(adjudication("eligible", d.approved_amount));
                adj.push(adjudication("copay", d.copay));
                adj.push(adjudication(
                    "benefit",
                    d.approved_amount.saturating_sub(d.copay),
                ));
                for r in &d.reasons {
                    adj.push(json!({
                        "category": { "coding": [{ "system": ADJUDICATION, "code": "eligible" }] },
                        "reason": { "coding": [{ "system": LEDGER_CODE_SYSTEM, "code": r }] },
                    }));
                }
            }
            json!({ "itemSequence": i + 1, "adjudication": adj })
        })
        .collect();
    let mut out = json!({
        "resourceType": "ClaimResponse",
        "id": c.id,
        "status": "active",
        "type": { "coding": [{ "system": CLAIM_TYPE, "code": "professional" }] },
        "use": claim_use(c),
        "patient": { "reference": format!("Patient/{}", c.patient_id) },
        "created": instant(created),
        "insurer": { "reference": format!("Organization/{}", c.insurer) },
        "requestor": { "reference": format!("Organization/{}", c.provider) },
        "request": { "reference": format!("Claim/{}", c.id) },
        "outcome": outcome,
        "disposition": disposition,
        "payeeType": { "coding": [{ "system": PAYEE_TYPE, "code": payee_code(c.payee) }] },
        "item": items,
        "total": [
            { "category": { "coding": [{ "system": ADJUDICATION, "code": "submitted" }] }, "amount": money(c.total_claimed) },
            { "category": { "coding": [{ "system": ADJUDICATION, "code": "eligible" }] }, "amount": money(c.total_approved) },
            { "category": { "coding": [{ "system": ADJUDICATION, "code": "copay" }] }, "amount": money(c.total_copay) },
            { "category": { "coding": [{ "system": ADJUDICATION, "code": "benefit" }] }, "amount": money(c.total_benefit) },
        ],
    });
    if c.status == ClaimStatus::Paid as i32 {
        out["payment"] = json!({
            "type": { "coding": [{ "system": PAYMENT_TYPE, "code": "complete" }] },
            "amount": money(c.total_benefit),
            "identifier": { "value": c.payment_reference },
        });
    }
    if c.appealed {
        out["processNote"] =
            json!([{ "number": 1, "type": "display", "text": "the provider appealed this claim" }]);
    }
    out
}

/// The `payeetype` code of a claim's payee (UNSPECIFIED is the provider).
fn payee_code(payee: i32) -> &'static str {
    match Payee::try_from(payee) {
        Ok(Payee::Subscriber) => "subscriber",
        _ => "provider",
    }
}

/// R4's process priorities (`Claim.priority`, which R4 requires; the ledger records none, so
/// every claim reads `normal`).
const PROCESS_PRIORITY: &str = "http://terminology.hl7.org/CodeSystem/processpriority";

/// The ledger's claim as the FHIR R4 Claim it records (`created` is the submitting block's
/// time): what [`map_claim`] read, written back the way it reads it, so that the answer maps to
/// the same `SubmitClaim` (docs/fhir.md, "Claim: ledger → FHIR").
pub fn claim_to_fhir(c: &Claim, created: u64) -> Value {
    let items: Vec<Value> = c
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut v = json!({
                "sequence": i + 1,
                "productOrService": { "coding": [{ "code": item.service_code }] },
                "servicedDate": date(c.service_date),
                "quantity": { "value": item.quantity },
                "unitPrice": money(item.unit_price),
                "net": money(item.quantity.saturating_mul(item.unit_price)),
            });
            if !item.modifier.is_empty() {
                v["modifier"] = json!([{ "coding": [{ "code": item.modifier }] }]);
            }
            v
        })
        .collect();
    let info = |category: &str, reference: Value| {
        json!({
            "category": { "coding": [{ "system": CLAIM_INFO_SYSTEM, "code": category }] },
            "valueReference": reference,
        })
    };
    let mut supporting: Vec<Value> = c
        .evidence
        .iter()
        .map(|n| {
            info(
                "access-event",
                json!({ "reference": format!("AuditEvent/{}-{n}", c.patient_id) }),
            )
        })
        .chain(c.record_ids.iter().map(|r| {
            info(
                "record",
                json!({ "identifier": { "system": RECORD_SYSTEM, "value": r } }),
            )
        }))
        .collect();
    for (i, s) in supporting.iter_mut().enumerate() {
        s["sequence"] = json!(i + 1);
    }
    let insurance: Vec<Value> = std::iter::once(json!({
        "sequence": 1,
        "focal": true,
        "coverage": { "reference": format!("Coverage/{}", c.policy_id) },
    }))
    .chain(c.other_coverage.iter().enumerate().map(|(i, o)| {
        json!({
            "sequence": i + 2,
            "focal": false,
            "coverage": { "identifier": {
                "value": o.policy_id,
                "assigner": { "reference": format!("Organization/{}", o.insurer) },
            } },
        })
    }))
    .collect();
    let mut out = json!({
        "resourceType": "Claim",
        "id": c.id,
        "status": "active",
        "type": { "coding": [{ "system": CLAIM_TYPE, "code": "professional" }] },
        "use": claim_use(c),
        "patient": { "reference": format!("Patient/{}", c.patient_id) },
        "billablePeriod": { "start": date(c.service_date) },
        "created": instant(created),
        "insurer": { "reference": format!("Organization/{}", c.insurer) },
        "provider": { "reference": format!("Organization/{}", c.provider) },
        "priority": { "coding": [{ "system": PROCESS_PRIORITY, "code": "normal" }] },
        "insurance": insurance,
        "payee": { "type": { "coding": [{ "system": PAYEE_TYPE, "code": payee_code(c.payee) }] } },
        "item": items,
        "total": money(c.total_claimed),
    });
    // FHIR forbids empty arrays.
    if !supporting.is_empty() {
        out["supportingInfo"] = Value::Array(supporting);
    }
    if !c.care_team.is_empty() {
        out["careTeam"] = c
            .care_team
            .iter()
            .enumerate()
            .map(|(i, did)| {
                json!({
                    "sequence": i + 1,
                    "provider": { "type": "Practitioner", "identifier": { "system": DID_SYSTEM, "value": did } },
                })
            })
            .collect();
    }
    if !c.procedures.is_empty() {
        out["procedure"] = c
            .procedures
            .iter()
            .enumerate()
            .map(|(i, p)| {
                json!({
                    "sequence": i + 1,
                    "date": date(c.service_date),
                    "procedureCodeableConcept": { "coding": [{ "system": procedure_uri(p.system), "code": p.code }] },
                })
            })
            .collect();
    }
    if !c.diagnoses.is_empty() {
        out["diagnosis"] = c
            .diagnoses
            .iter()
            .enumerate()
            .map(|(i, code)| {
                json!({
                    "sequence": i + 1,
                    "diagnosisCodeableConcept": { "coding": [{ "system": ICD10_SYSTEMS[0], "code": code }] },
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fhir::map::testkit::*;
    use crate::fhir::map::{parse_time, Edge};

    #[test]
    fn money_is_exact_in_minor_units() {
        assert_eq!(minor_units(&json!(12.5), "x").unwrap(), 1250);
        assert_eq!(minor_units(&json!(12), "x").unwrap(), 1200);
        assert_eq!(minor_units(&json!(0.07), "x").unwrap(), 7);
        assert!(minor_units(&json!(1.005), "x").is_err());
        assert!(minor_units(&json!(-1), "x").is_err());
        assert_eq!(money(1250), json!({ "value": 12.5 }));
        assert_eq!(money(7), json!({ "value": 0.07 }));
    }

    #[test]
    fn a_ledger_claim_reads_back_as_the_claim_it_records() {
        let (submitted, _) = claim_from_fhir(&a_claim()).unwrap();
        let mut c = Claim {
            id: "cl-7".into(),
            provider: "hospital-a".into(),
            patient_id: submitted.patient_id.clone(),
            insurer: submitted.insurer.clone(),
            policy_id: submitted.policy_id.clone(),
            service_date: submitted.service_date,
            items: submitted.items.clone(),
            evidence: submitted.evidence.clone(),
            record_ids: vec!["rec-9".into()],
            total_claimed: submitted.total,
            ..Default::default()
        };
        c.items[0].modifier = "25".into();
        c.diagnoses = vec!["J45.909".into(), "E11.65".into()];
        c.care_team = vec!["did:medledger:ab12".into()];
        let v = claim_to_fhir(&c, 1_795_651_200);
        assert_eq!(
            v["diagnosis"][1],
            json!({ "sequence": 2, "diagnosisCodeableConcept": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.65" }] } })
        );
        assert_eq!(
            v["careTeam"][0]["provider"]["identifier"],
            json!({ "system": DID_SYSTEM, "value": "did:medledger:ab12" })
        );
        assert_eq!(v["id"], "cl-7");
        assert_eq!(v["created"], "2026-11-26T00:00:00Z");
        assert_eq!(v["billablePeriod"]["start"], "2026-11-25");
        assert_eq!(v["supportingInfo"][1]["sequence"], 2);
        let (again, provider) = claim_from_fhir(&v).unwrap();
        assert_eq!(provider.as_deref(), Some("hospital-a"));
        assert_eq!(again.items[0].modifier, "25");
        assert_eq!(again.record_ids, ["rec-9"]);
        assert_eq!(again.diagnoses, c.diagnoses);
        assert_eq!(again.care_team, c.care_team);
        assert_eq!(
            (again.patient_id, again.insurer, again.policy_id),
            (c.patient_id, c.insurer, c.policy_id)
        );
        assert_eq!(
            (again.service_date, again.total, again.evidence),
            (c.service_date, c.total_claimed, c.evidence)
        );
    }

    #[test]
    fn a_fhir_claim_becomes_a_submit_claim() {
        let Mapped { value, warnings } = map_claim(&a_claim()).unwrap();
        assert_eq!(warnings, vec![]);
        let (c, provider) = value;
        assert_eq!(provider.as_deref(), Some("hospital-a"));
        assert_eq!(c.patient_id, "pt-1");
        assert_eq!(c.insurer, "insurer-c");
        assert_eq!(c.policy_id, "basic");
        assert_eq!(c.items[0].unit_price, 7550);
        assert_eq!(c.items[0].quantity, 2);
        assert_eq!(c.total, 15100);
        assert_eq!(c.evidence, vec![3]);
        assert_eq!(
            c.service_date,
            parse_time("2026-11-25", "x", Edge::Start).unwrap()
        );
    }

    #[test]
    fn a_preauthorization_is_read_and_written_back_as_one() {
        let mut v = a_claim();
        v["use"] = json!("preauthorization");
        v.as_object_mut().unwrap().remove("supportingInfo");
        let (c, _) = claim_from_fhir(&v).unwrap();
        assert!(c.preauthorization);
        let claim = Claim {
            preauthorization: true,
            ..Default::default()
        };
        assert_eq!(claim_to_fhir(&claim, 0)["use"], "preauthorization");
        assert_eq!(claim_response(&claim, 0)["use"], "preauthorization");
        v["use"] = json!("predetermination");
        assert_eq!(claim_errors(&v), ["not-supported@Claim.use"]);
        v["use"] = json!("claim");
        assert!(!claim_from_fhir(&v).unwrap().0.preauthorization);
    }

    #[test]
    fn diagnoses_are_icd10_codes_and_the_care_team_practitioners_by_did() {
        let mut v = a_claim();
        v["diagnosis"] = json!([
            { "sequence": 1, "diagnosisCodeableConcept": { "coding": [
                { "system": "http://snomed.info/sct", "code": "195967001" },
                { "system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J45.909" }] },
              "type": [{ "coding": [{ "code": "principal" }] }] },
            { "sequence": 2, "diagnosisCodeableConcept": { "coding": [
                { "system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.65" }] } },
        ]);
        v["careTeam"] = json!([{ "sequence": 1, "provider": { "identifier":
            { "system": DID_SYSTEM, "value": "did:medledger:ab12" } }, "role": { "text": "primary" } }]);
        v["item"][0]["diagnosisSequence"] = json!([1]);
        let Mapped {
            value: (c, _),
            warnings,
        } = map_claim(&v).unwrap();
        assert_eq!(c.diagnoses, ["J45.909", "E11.65"]);
        assert_eq!(c.care_team, ["did:medledger:ab12"]);
        let warned: Vec<&str> = warnings.iter().map(|w| w.element.as_str()).collect();
        assert_eq!(
            warned,
            [
                "Claim.item[0].diagnosisSequence",
                "Claim.diagnosis[0].type",
                "Claim.careTeam[0].role"
            ]
        );

        // Every bad one named at once: no ICD-10 coding, a malformed code, a reference to a
        // Condition, a duplicate; a Practitioner by FHIR reference, a duplicate DID.
        v["diagnosis"] = json!([
            { "diagnosisCodeableConcept": { "coding": [{ "system": "http://snomed.info/sct", "code": "195967001" }] } },
            { "diagnosisCodeableConcept": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "123456" }] } },
            { "diagnosisReference": { "reference": "Condition/1" } },
            { "diagnosisCodeableConcept": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.65" }] } },
            { "diagnosisCodeableConcept": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.65" }] } },
        ]);
        v["careTeam"] = json!([
            { "provider": { "reference": "Practitioner/example" } },
            { "provider": { "identifier": { "system": DID_SYSTEM, "value": "did:medledger:ab12" } } },
            { "provider": { "identifier": { "system": DID_SYSTEM, "value": "did:medledger:ab12" } } },
        ]);
        assert_eq!(
            claim_errors(&v),
            [
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.diagnosis[1].diagnosisCodeableConcept.coding",
                "not-supported@Claim.diagnosis[2].diagnosisReference",
                "required@Claim.diagnosis[2].diagnosisCodeableConcept",
                "value@Claim.diagnosis[4].diagnosisCodeableConcept",
                "value@Claim.careTeam[0].provider",
                "value@Claim.careTeam[2].provider",
            ]
        );
        v["diagnosis"] = json!((0..13)
            .map(|i| json!({ "diagnosisCodeableConcept": { "coding": [
            { "system": "http://hl7.org/fhir/sid/icd-10", "code": format!("Z00.{i:02}") }] } }))
            .collect::<Vec<_>>());
        v.as_object_mut().unwrap().remove("careTeam");
        assert_eq!(claim_errors(&v), ["not-supported@Claim.diagnosis[12]"]);
    }

    #[test]
    fn payee_procedures_and_other_coverage_are_read_and_written_back() {
        let mut v = a_claim();
        v["payee"] = json!({ "type": { "coding": [{ "system": PAYEE_TYPE, "code": "subscriber" }] },
            "party": { "reference": "Patient/pt-1" } });
        v["procedure"] = json!([
            { "sequence": 1, "date": "2026-11-25", "type": [{ "coding": [{ "code": "primary" }] }],
              "procedureCodeableConcept": { "coding": [
                { "system": "http://www.ama-assn.org/go/cpt", "code": "99213" }] } },
            { "sequence": 2, "procedureCodeableConcept": { "coding": [
                { "system": "http://example.org/local", "code": "X1" },
                { "system": "http://snomed.info/sct", "code": "80146002" }] } },
            { "sequence": 3, "procedureCodeableConcept": { "coding": [
                { "system": "http://www.cms.gov/Medicare/Coding/ICD10", "code": "0DB60ZZ" }] } },
        ]);
        v["insurance"] = json!([
            { "sequence": 1, "focal": true, "coverage": { "reference": "Coverage/basic" },
              "preAuthRef": ["PA-1"] },
            { "sequence": 2, "focal": false, "coverage": { "identifier": { "value": "silver",
                "assigner": { "reference": "Organization/insurer-d" } } } },
        ]);
        let Mapped {
            value: (c, _),
            warnings,
        } = map_claim(&v).unwrap();
        let warned: Vec<&str> = warnings.iter().map(|w| w.element.as_str()).collect();
        assert_eq!(
            warned,
            ["Claim.insurance[0].preAuthRef", "Claim.procedure[0].type"]
        );
        assert_eq!(c.payee, Payee::Subscriber as i32);
        assert_eq!(c.policy_id, "basic");
        assert_eq!(
            c.other_coverage,
            [OtherCoverage {
                insurer: "insurer-d".into(),
                policy_id: "silver".into()
            }]
        );
        let systems: Vec<(i32, &str)> = c
            .procedures
            .iter()
            .map(|p| (p.system, p.code.as_str()))
            .collect();
        assert_eq!(
            systems,
            [
                (ProcedureSystem::Cpt as i32, "99213"),
                (ProcedureSystem::SnomedCt as i32, "80146002"),
                (ProcedureSystem::Icd10Pcs as i32, "0DB60ZZ"),
            ]
        );
        // Written back, it reads as the same claim.
        let claim = Claim {
            id: "cl-1".into(),
            provider: "hospital-a".into(),
            patient_id: c.patient_id.clone(),
            insurer: c.insurer.clone(),
            policy_id: c.policy_id.clone(),
            service_date: c.service_date,
            items: c.items.clone(),
            evidence: c.evidence.clone(),
            total_claimed: c.total,
            payee: c.payee,
            procedures: c.procedures.clone(),
            other_coverage: c.other_coverage.clone(),
            ..Default::default()
        };
        let back = claim_to_fhir(&claim, 0);
        assert_eq!(back["payee"]["type"]["coding"][0]["code"], "subscriber");
        assert_eq!(back["procedure"][2]["date"], "2026-11-25");
        assert_eq!(back["insurance"][1]["focal"], false);
        assert_eq!(
            claim_response(&claim, 0)["payeeType"]["coding"][0]["code"],
            "subscriber"
        );
        let (again, _) = claim_from_fhir(&back).unwrap();
        assert_eq!(
            (again.payee, again.procedures, again.other_coverage),
            (c.payee, c.procedures.clone(), c.other_coverage.clone())
        );
        // No payee: the provider; a provider payee names the claim's provider.
        let mut p = a_claim();
        assert_eq!(claim_from_fhir(&p).unwrap().0.payee, Payee::Provider as i32);
        p["payee"] = json!({ "type": { "coding": [{ "code": "provider" }] },
            "party": { "reference": "Organization/hospital-a" } });
        assert_eq!(claim_from_fhir(&p).unwrap().0.payee, Payee::Provider as i32);

        // Every bad one named at once.
        v["payee"] = json!({ "type": { "coding": [{ "code": "subscriber" }] },
            "party": { "reference": "Patient/someone-else" } });
        v["procedure"] = json!([
            { "date": "2026-11-24", "procedureCodeableConcept": { "coding": [
                { "system": "http://www.ama-assn.org/go/cpt", "code": "99213" }] } },
            { "procedureCodeableConcept": { "coding": [
                { "system": "http://www.ama-assn.org/go/cpt", "code": "9921" }] } },
            { "procedureCodeableConcept": { "text": "gum resection" } },
            { "procedureReference": { "reference": "Procedure/1" } },
            { "procedureCodeableConcept": { "coding": [
                { "system": "http://snomed.info/sct", "code": "80146002" }] } },
            { "procedureCodeableConcept": { "coding": [
                { "system": "http://snomed.info/sct", "code": "80146002" }] } },
        ]);
        v["insurance"] = json!([
            { "sequence": 1, "focal": true, "coverage": { "reference": "Coverage/basic" } },
            { "sequence": 2, "focal": true, "coverage": { "reference": "Coverage/gold" } },
            { "sequence": 3, "focal": false, "coverage": { "reference": "Coverage/silver" } },
            { "sequence": 4, "focal": false, "coverage": { "identifier": { "value": "basic",
                "assigner": { "reference": "Organization/insurer-c" } } } },
        ]);
        assert_eq!(
            claim_errors(&v),
            [
                "business-rule@Claim.insurance[1].focal",
                "value@Claim.insurance[2].coverage.identifier",
                "value@Claim.insurance[3].coverage",
                "business-rule@Claim.payee.party",
                "business-rule@Claim.procedure[0].date",
                "value@Claim.procedure[1].procedureCodeableConcept.coding",
                "required@Claim.procedure[2].procedureCodeableConcept.coding",
                "not-supported@Claim.procedure[3].procedureReference",
                "required@Claim.procedure[3].procedureCodeableConcept",
                "value@Claim.procedure[5].procedureCodeableConcept",
            ]
        );
        let mut w = a_claim();
        w["payee"] = json!({ "type": { "coding": [{ "code": "other" }] } });
        w["insurance"] = json!([
            { "sequence": 2, "focal": false, "coverage": { "reference": "Coverage/basic" } },
            { "sequence": 1, "coverage": { "reference": "Coverage/basic" } },
        ]);
        assert_eq!(
            claim_errors(&w),
            [
                "value@Claim.insurance[0].coverage.identifier",
                "value@Claim.insurance[1].sequence",
                "required@Claim.insurance[1].focal",
                "not-supported@Claim.payee.type",
            ]
        );
        w["insurance"] = json!([
            { "sequence": 1, "focal": false, "coverage": { "identifier": { "value": "a",
                "assigner": { "reference": "Organization/insurer-d" } } } },
        ]);
        assert_eq!(
            claim_errors(&w),
            ["required@Claim.insurance", "not-supported@Claim.payee.type"]
        );
        w["payee"] = json!({ "type": { "coding": [{ "code": "provider" }] } });
        w["insurance"] = json!((1..=5)
            .map(|i| if i == 1 {
                json!({ "sequence": 1, "focal": true, "coverage": { "reference": "Coverage/basic" } })
            } else {
                json!({ "sequence": i, "focal": false, "coverage": { "identifier": {
                    "value": format!("p{i}"), "assigner": { "reference": "Organization/insurer-d" } } } })
            })
            .collect::<Vec<_>>());
        assert_eq!(claim_errors(&w), ["not-supported@Claim.insurance[4]"]);
        w["procedure"] = json!((0..13)
            .map(|i| json!({ "procedureCodeableConcept": { "coding": [
                { "system": "http://snomed.info/sct", "code": format!("{}", 100_000 + i) }] } }))
            .collect::<Vec<_>>());
        w["insurance"].as_array_mut().unwrap().truncate(4);
        assert_eq!(claim_errors(&w), ["not-supported@Claim.procedure[12]"]);
    }

    /// The 17 Claim examples of R4: each is refused, with every issue at once, for elements that
    /// `SubmitClaim` has no field for (referral, bodySite, …) or values it cannot take (a
    /// diagnosis without an ICD-10 code, a care team member who is no DID, a procedure without
    /// an ICD-10-PCS, SNOMED CT or CPT code, an other coverage that names no insurer).
    /// Doing what each issue asks ([`fix_claim`]) makes every one acceptable: nothing else stood
    /// in its way.
    #[test]
    fn the_official_claim_examples() {
        let mut wrong = Vec::new();
        for (id, expected) in CLAIM_OUTCOMES {
            let mut v = example(&format!("Claim-{id}"));
            let got = match claim_from_fhir(&v) {
                Ok(_) => vec!["accepted".to_string()],
                Err(r) => errors(&r),
            };
            if got != expected {
                wrong.push(format!("{id}: {got:#?}"));
                continue;
            }
            for e in &got {
                fix_claim(&mut v, e);
            }
            if let Err(r) = claim_from_fhir(&v) {
                wrong.push(format!("{id}, fixed: {r}"));
            }
        }
        assert!(wrong.is_empty(), "outcomes differ:\n{}", wrong.join("\n"));
    }

    /// Does what the issue `code@expression` of a Claim example asks: leaves out an element the
    /// ledger has no field for (every supportingInfo that is not the ledger's, a procedure's
    /// device), names the patient, insurer, coverage and other insurer by reference, codes
    /// diagnoses, procedures and the payee as the ledger reads them, moves a procedure to the
    /// day of service, prices an item by its `net`, and leaves the total to the items.
    fn fix_claim(v: &mut Value, e: &str) {
        let (code, path) = e.split_once('@').unwrap();
        let o = v.as_object_mut().unwrap();
        if path.starts_with("Claim.supportingInfo") {
            o.remove("supportingInfo");
            return;
        }
        match (code, path) {
            (_, "Claim.patient.reference") => o["patient"] = json!({ "reference": "Patient/1" }),
            (_, "Claim.insurer.reference") => {
                o["insurer"] = json!({ "reference": "Organization/2" })
            }
            (_, "Claim.insurance[0].coverage.reference") => {
                o["insurance"][0]["coverage"] = json!({ "reference": "Coverage/9876B1" })
            }
            ("value", p) if p.starts_with("Claim.diagnosis[") => {
                let pointer = fhir_pointer(p.trim_end_matches(".coding"));
                let n = pointer.split('/').nth(2).unwrap().to_string();
                patch(
                    v,
                    &pointer,
                    Some(
                        json!({ "coding": [{ "system": ICD10_SYSTEMS[0], "code": format!("K02.{n}") }] }),
                    ),
                );
            }
            ("value", p) if p.starts_with("Claim.careTeam[") => {
                let pointer = fhir_pointer(p);
                let n = pointer.split('/').nth(2).unwrap().to_string();
                patch(
                    v,
                    &pointer,
                    Some(
                        json!({ "identifier": { "system": DID_SYSTEM, "value": format!("did:medledger:example{n}") } }),
                    ),
                );
            }
            ("not-supported", "Claim.payee.type") => {
                o["payee"] = json!({ "type": { "coding": [{ "code": "provider" }] } })
            }
            ("business-rule", p) if p.starts_with("Claim.procedure[") => {
                patch(v, &fhir_pointer(p), None)
            }
            (_, p) if p.starts_with("Claim.procedure[") && p.ends_with(".coding") => patch(
                v,
                &fhir_pointer(p.trim_end_matches(".coding")),
                Some(json!({ "coding": [{ "system": PROCEDURE_SYSTEMS[2].0, "code": "99213" }] })),
            ),
            ("value", p) if p.starts_with("Claim.insurance[") && p.ends_with(".identifier") => {
                patch(
                    v,
                    &fhir_pointer(p.trim_end_matches(".identifier")),
                    Some(json!({ "identifier": { "value": "9876B1",
                        "assigner": { "reference": "Organization/3" } } })),
                )
            }
            ("business-rule", "Claim.total") => {
                o.remove("total");
            }
            ("required", p) if p.ends_with(".unitPrice") => {
                let pointer = fhir_pointer(p.trim_end_matches(".unitPrice"));
                let item = v.pointer_mut(&pointer).unwrap();
                item["unitPrice"] = item["net"].clone();
                item.as_object_mut().unwrap().remove("quantity");
            }
            ("not-supported", p) => patch(v, &fhir_pointer(p), None),
            _ => panic!("no fix for {e}"),
        }
    }

    /// The JSON pointer of a FHIRPath such as `Claim.item[2].detail`: `/item/2/detail`.
    fn fhir_pointer(path: &str) -> String {
        let (_, rest) = path.split_once('.').unwrap();
        format!("/{}", rest.replace(['.', '['], "/").replace(']', ""))
    }

    /// Each Claim example's errors (`code@expression`, in the order found); none is accepted:
    /// each has a diagnosis without an ICD-10 code or a care team member who is no DID.
    const CLAIM_OUTCOMES: [(&str, &[&str]); 17] = [
        (
            "100150",
            &[
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "100151",
            &[
                "not-supported@Claim.item[1].bodySite",
                "not-supported@Claim.item[1].subSite",
                "not-supported@Claim.item[2].bodySite",
                "not-supported@Claim.item[2].detail",
                "not-supported@Claim.supportingInfo[0].code",
                "not-supported@Claim.supportingInfo[0].reason",
                "not-supported@Claim.supportingInfo[0].timingDate",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].code",
                "not-supported@Claim.supportingInfo[1].valueString",
                "value@Claim.supportingInfo[1].category.coding",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "100152",
            &[
                "not-supported@Claim.contained",
                "value@Claim.patient.reference",
                "value@Claim.insurer.reference",
                "value@Claim.insurance[0].coverage.reference",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "100153",
            &[
                "not-supported@Claim.fundsReserve",
                "not-supported@Claim.item[0].detail",
                "not-supported@Claim.item[1].bodySite",
                "not-supported@Claim.item[1].subSite",
                "not-supported@Claim.item[1].servicedDate",
                "not-supported@Claim.item[2].bodySite",
                "not-supported@Claim.item[2].detail",
                "not-supported@Claim.item[2].servicedDate",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "100154",
            &[
                "required@Claim.patient.reference",
                "required@Claim.insurer.reference",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "100155",
            &[
                "not-supported@Claim.contained",
                "value@Claim.patient.reference",
                "required@Claim.insurer.reference",
                "value@Claim.insurance[0].coverage.reference",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "100156",
            &[
                "not-supported@Claim.contained",
                "not-supported@Claim.referral",
                "not-supported@Claim.related",
                "not-supported@Claim.item[0].bodySite",
                "not-supported@Claim.item[0].factor",
                "not-supported@Claim.item[0].informationSequence",
                "not-supported@Claim.item[0].locationCodeableConcept",
                "not-supported@Claim.item[0].udi",
                "not-supported@Claim.item[1].bodySite",
                "not-supported@Claim.item[1].locationCodeableConcept",
                "not-supported@Claim.item[1].subSite",
                "not-supported@Claim.item[2].bodySite",
                "not-supported@Claim.item[2].detail",
                "not-supported@Claim.item[2].locationCodeableConcept",
                "not-supported@Claim.item[2].procedureSequence",
                "business-rule@Claim.total",
                "not-supported@Claim.supportingInfo[0].code",
                "not-supported@Claim.supportingInfo[0].timingDate",
                "value@Claim.supportingInfo[0].category.coding",
                "value@Claim.careTeam[0].provider",
                "not-supported@Claim.payee.type",
                "business-rule@Claim.procedure[0].date",
                "required@Claim.procedure[0].procedureCodeableConcept.coding",
            ],
        ),
        (
            "660150",
            &[
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "660151",
            &[
                "not-supported@Claim.prescription",
                "not-supported@Claim.item[0].detail",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "660152",
            &[
                "not-supported@Claim.contained",
                "not-supported@Claim.prescription",
                "value@Claim.insurance[0].coverage.identifier",
                "not-supported@Claim.item[0].category",
                "not-supported@Claim.item[0].detail",
                "not-supported@Claim.item[0].programCode",
                "not-supported@Claim.item[0].revenue",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "760150",
            &[
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "760151",
            &[
                "not-supported@Claim.originalPrescription",
                "not-supported@Claim.prescription",
                "not-supported@Claim.item[0].detail",
                "not-supported@Claim.item[0].informationSequence",
                "required@Claim.item[0].unitPrice",
                "not-supported@Claim.supportingInfo[0].code",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].code",
                "not-supported@Claim.supportingInfo[1].valueQuantity",
                "value@Claim.supportingInfo[1].category.coding",
                "not-supported@Claim.supportingInfo[2].code",
                "not-supported@Claim.supportingInfo[2].valueQuantity",
                "value@Claim.supportingInfo[2].category.coding",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "760152",
            &[
                "not-supported@Claim.item[0].detail",
                "not-supported@Claim.item[0].informationSequence",
                "required@Claim.item[0].unitPrice",
                "not-supported@Claim.supportingInfo[0].code",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].code",
                "not-supported@Claim.supportingInfo[1].valueQuantity",
                "value@Claim.supportingInfo[1].category.coding",
                "not-supported@Claim.supportingInfo[2].code",
                "not-supported@Claim.supportingInfo[2].valueQuantity",
                "value@Claim.supportingInfo[2].category.coding",
                "not-supported@Claim.supportingInfo[3].code",
                "value@Claim.supportingInfo[3].category.coding",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "860150",
            &[
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "960150",
            &[
                "not-supported@Claim.enterer",
                "not-supported@Claim.facility",
                "not-supported@Claim.subType",
                "not-supported@Claim.item[0].encounter",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
                "not-supported@Claim.procedure[0].udi",
                "value@Claim.procedure[0].procedureCodeableConcept.coding",
            ],
        ),
        (
            "960151",
            &[
                "not-supported@Claim.accident",
                "not-supported@Claim.enterer",
                "not-supported@Claim.facility",
                "not-supported@Claim.item[0].servicedDate",
                "not-supported@Claim.supportingInfo[0].timingPeriod",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].timingPeriod",
                "value@Claim.supportingInfo[1].category.coding",
                "value@Claim.diagnosis[0].diagnosisCodeableConcept.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
        (
            "MED-00050",
            &[
                "not-supported@Claim.contained",
                "not-supported@Claim.subType",
                "value@Claim.patient.reference",
                "required@Claim.insurer.reference",
                "value@Claim.insurance[0].coverage.reference",
                "not-supported@Claim.item[0].informationSequence",
                "not-supported@Claim.item[0].locationCodeableConcept",
                "not-supported@Claim.supportingInfo[0].timingPeriod",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].code",
                "value@Claim.supportingInfo[1].category.coding",
                "value@Claim.careTeam[0].provider",
            ],
        ),
    ];
}
