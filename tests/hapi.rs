//! The HL7 FHIR validator's engine (HAPI FHIR, `tools/fhir-validator`, run offline) over every
//! FHIR document a test collected: the gateway's answers, a record it released and the CLI's
//! `verify access --export fhir`. Each must have zero errors (fatal included); warnings are
//! printed, and docs/fhir.md lists the ones that remain. A missing `java` or jar fails the test:
//! scripts/deps.sh installs both.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The validator's jar: `$MEDLEDGER_FHIR_VALIDATOR`, else `fhir-validator/fhir-validator.jar`
/// in `$MEDLEDGER_TOOLS` (default `~/.cache/medledger/bin`), where scripts/deps.sh builds it.
pub fn validator_jar() -> PathBuf {
    if let Some(jar) = std::env::var_os("MEDLEDGER_FHIR_VALIDATOR") {
        return PathBuf::from(jar);
    }
    let tools = std::env::var_os("MEDLEDGER_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/medledger/bin")
        });
    tools.join("fhir-validator/fhir-validator.jar")
}

/// What the validator said of one document.
#[derive(Debug)]
pub struct Report {
    /// The document's name in the test (`GET /fhir/metadata`, …).
    pub name: String,
    /// Its `resourceType`.
    pub resource_type: String,
    /// Errors and fatal errors.
    pub errors: u64,
    /// Warnings.
    pub warnings: u64,
    /// The errors and warnings: `severity`, `location`, `message`, `messageId`.
    pub issues: Vec<Value>,
}

/// Validates `docs` (a name and a FHIR JSON resource each) in one JVM run, one report per
/// document in order. Panics if the validator cannot run.
pub fn validate(docs: &[(String, Value)]) -> Vec<Report> {
    let jar = validator_jar();
    assert!(
        jar.is_file(),
        "the HAPI FHIR validator is not built at {} (scripts/deps.sh builds it)",
        jar.display()
    );
    let input = Value::Array(docs.iter().map(|(_, v)| v.clone()).collect()).to_string();
    // C1 only: a batch this short gains nothing from the optimising compiler's warm-up.
    let mut child = Command::new("java")
        .arg("-XX:TieredStopAtLevel=1")
        .arg("-jar")
        .arg(&jar)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java runs the HAPI FHIR validator (scripts/deps.sh installs Java 17)");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("the validator reads its input");
    let out = child.wait_with_output().expect("the validator ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{}", stderr.trim_end());
    assert!(
        out.status.success(),
        "the HAPI FHIR validator failed: {stderr}"
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), docs.len(), "one report per document");
    docs.iter()
        .zip(lines)
        .map(|((name, _), r)| Report {
            name: name.clone(),
            resource_type: r["resourceType"].as_str().unwrap_or("?").to_string(),
            errors: r["errors"].as_u64().expect("an error count"),
            warnings: r["warnings"].as_u64().expect("a warning count"),
            issues: r["issues"].as_array().cloned().unwrap_or_default(),
        })
        .collect()
}

/// Asserts that HAPI's validator finds no error in any of `docs`, naming every error found
/// (and printing the warnings).
pub fn assert_valid(docs: &[(String, Value)]) {
    let reports = validate(docs);
    let mut errors = Vec::new();
    for r in &reports {
        eprintln!(
            "HAPI: {} ({}): {} errors, {} warnings",
            r.name, r.resource_type, r.errors, r.warnings
        );
        for i in &r.issues {
            let line = format!(
                "  {} at {}: {}",
                i["severity"].as_str().unwrap_or("?"),
                i["location"].as_str().unwrap_or("?"),
                i["message"].as_str().unwrap_or("?")
            );
            eprintln!("{line}");
            if i["severity"] != "warning" {
                errors.push(format!("{} ({}){line}", r.name, r.resource_type));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "HAPI's FHIR validator found {} errors:\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert!(
        reports.iter().all(|r| r.errors == 0),
        "errors counted without an issue: {reports:?}"
    );
}

/// `medledger verify access PATIENT --export fhir` against `node_rpc`, as FHIR JSON.
pub fn cli_fhir_export(home: &Path, node_rpc: &str, patient: &str) -> Value {
    let out = Command::new(crate::support::medledger_bin())
        .arg("--home")
        .arg(home)
        .args(["verify", "access", patient, "--export", "fhir"])
        .env("MEDLEDGER_NODE", node_rpc)
        .output()
        .expect("medledger runs");
    assert!(
        out.status.success(),
        "verify access --export fhir: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the export is JSON")
}

#[test]
fn a_resource_with_an_impossible_date_is_an_error_and_a_good_one_is_not() {
    // A JVM on both cores: not beside a localnet.
    let _machine = crate::support::exclusive();
    let good = serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "error", "code": "value", "diagnostics": "x",
                    "expression": ["Consent.provision.period.end"] }],
    });
    let mut bad = good.clone();
    bad["issue"][0]["code"] = serde_json::json!("no-such-issue-type");
    let audit = serde_json::json!({
        "resourceType": "AuditEvent",
        "type": { "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110" },
        "recorded": "2026-13-01T00:00:00Z",
        "agent": [{ "who": { "display": "x" }, "requestor": true }],
        "source": { "observer": { "display": "medledger" } },
    });
    let reports = validate(&[
        ("good".into(), good),
        ("bad code".into(), bad),
        ("month 13".into(), audit),
    ]);
    assert_eq!(reports[0].errors, 0, "{reports:?}");
    assert!(reports[1].errors > 0, "{reports:?}");
    assert!(
        reports[2]
            .issues
            .iter()
            .any(|i| i["location"] == "AuditEvent.recorded" && i["severity"] == "error"),
        "FHIR.js took 2026-13-01; HAPI does not: {reports:?}"
    );
}
