#!/usr/bin/env node
// Validates FHIR R4 JSON files with FHIR.js (the `fhir` package, R4 core profiles):
//   node web/tools/validate-fhir.mjs a.json [b.json ...]
// Prints every message of severity error or fatal, with file and location, and exits 1 if any
// file has one (2 for a usage or read error). FHIR.js does not reject empty strings, which FHIR
// forbids ("Strings SHALL NOT be empty", R4 §2.1.28.0.1 / datatypes#primitive), so this script
// also reports any "" value as an error.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Fhir } = require('fhir');

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: validate-fhir.mjs FILE.json [FILE.json ...]');
  process.exit(2);
}

/** FHIR JSON forbids "" anywhere a primitive is (and empty objects and arrays). */
function emptyValues(node, path, out) {
  if (node === '') out.push({ severity: 'error', location: path, message: 'empty string (FHIR strings SHALL NOT be empty)' });
  else if (Array.isArray(node)) {
    if (node.length === 0) out.push({ severity: 'error', location: path, message: 'empty array' });
    node.forEach((x, i) => emptyValues(x, `${path}[${i}]`, out));
  } else if (node && typeof node === 'object') {
    if (Object.keys(node).length === 0) out.push({ severity: 'error', location: path, message: 'empty object' });
    for (const [k, v] of Object.entries(node)) emptyValues(v, `${path}.${k}`, out);
  }
}

const fhir = new Fhir();
let failed = 0;
for (const file of files) {
  let resource;
  try {
    resource = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`${file}: cannot read JSON: ${e.message}`);
    process.exit(2);
  }
  const messages = [];
  if (!resource || typeof resource.resourceType !== 'string') {
    messages.push({ severity: 'error', location: '', message: 'not a FHIR resource (no resourceType)' });
  } else {
    const r = fhir.validate(resource, { errorOnUnexpected: true });
    messages.push(...r.messages);
    if (!r.valid && !r.messages.some((m) => m.severity === 'error' || m.severity === 'fatal')) {
      messages.push({ severity: 'error', location: '', message: 'FHIR.js reports the resource invalid' });
    }
    emptyValues(resource, resource.resourceType, messages);
  }
  const errors = messages.filter((m) => m.severity === 'error' || m.severity === 'fatal');
  for (const m of errors) console.error(`${file}: ${m.severity}: ${m.location ?? ''}: ${m.message}`);
  if (errors.length) failed++;
  else console.log(`${file}: valid FHIR R4 ${resource.resourceType}`);
}
process.exit(failed ? 1 : 0);
