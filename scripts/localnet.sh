#!/usr/bin/env bash
# Starts a 4-validator consortium on this machine (hospital-a, lab-b, insurer-c, hospital-d) and
# shows it working: installs dependencies, builds medledger, `medledger localnet up`, then a
# hospital enrols a patient, the patient grants consent, hospital-a logs an access, and a proof
# of the consent is verified.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medledger/target}"
TOOLS="${MEDLEDGER_TOOLS:-$HOME/.cache/medledger/bin}"
cargo build --release -p medledger
install -m 0755 "$CARGO_TARGET_DIR/release/medledger" "$TOOLS/medledger"
export PATH="$TOOLS:$PATH"

medledger localnet up
echo
echo "== demo: hospital-a enrols a patient, who grants it access; hospital-a logs a read; an auditor verifies"
name="demo-patient-$(date +%s)"
medledger keys add "$name" >/dev/null
patient="$(medledger keys show "$name" -o json | grep -o '"patient_id": "[^"]*"' | cut -d'"' -f4)"
medledger tx --from hospital-a patient register --patient-key "$name"
grant="$(medledger tx --from "$name" consent grant --grantee hospital-a --class Observation --purpose TREAT -o json)"
consent="$(printf '%s' "$grant" | grep -o '"consent_id": "[^"]*"' | cut -d'"' -f4)"
echo "granted consent $consent"
medledger tx --from hospital-a access log --patient "$patient" --record obs-1 --class Observation --purpose TREAT
medledger verify consent "$consent"
echo
echo "== the record vault: lab-b stores a lab result; hospital-a reads it under the patient's consent; insurer-c is refused"
obs="$(mktemp)"; got="$(mktemp)"
printf '{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"valueQuantity":{"value":6.1,"unit":"%%"}}' > "$obs"
record="lab-$(date +%s)"
medledger vault put --from lab-b --patient "$patient" --type Observation --file "$obs" --record "$record"
medledger vault get --from hospital-a --record "$record" --purpose TREAT --out "$got"
cmp "$obs" "$got" && echo "hospital-a received the record byte for byte"
medledger vault get --from insurer-c --record "$record" --purpose TREAT --out /dev/null || echo "(insurer-c refused, as it must be)"
rm -f "$obs" "$got"
echo
# A certificate of state H is made by the validators' votes on block H+1 and lands in block H+2.
sleep 2
medledger verify --certificate access "$patient"
echo
echo "The consortium keeps running. Put the CLI on your PATH:  export PATH=\"$TOOLS:\$PATH\""
echo "Status: medledger localnet status    Stop: medledger localnet down"
gw="$(medledger localnet status -o json | grep -o '"gateway": "[^"]*"' | head -1 | cut -d'"' -f4)"
echo "The patient page (verified in your browser, live): $gw/patient   (open the key $HOME/.medledger/keys/$name.json there)"
echo "The auditor page: $gw/auditor   (open a member's key, e.g. $HOME/.medledger/keys/hospital-a.json)    FHIR: $gw/fhir/metadata    Metrics: medledger localnet status"
