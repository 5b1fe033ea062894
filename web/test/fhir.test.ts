// tools/validate-fhir.mjs: a real AuditEvent Bundle (from `medledger verify access P --export
// fhir`) passes; the same Bundle with an empty valueString fails with the error printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../tools/validate-fhir.mjs', import.meta.url));
const good = fileURLToPath(new URL('./vectors/fhir-auditevent-bundle.json', import.meta.url));
const run = (...files: string[]) => spawnSync(process.execPath, [script, ...files], { encoding: 'utf8' });

function setFirst(node: any, key: string, value: unknown): boolean {
  if (Array.isArray(node)) return node.some((x) => setFirst(x, key, value));
  if (node && typeof node === 'object') {
    if (key in node) {
      node[key] = value;
      return true;
    }
    return Object.values(node).some((x) => setFirst(x, key, value));
  }
  return false;
}

test('a valid AuditEvent Bundle passes', () => {
  const r = run(good);
  assert.equal(r.status, 0, r.stderr);
});

test('a Bundle with "valueString": "" fails, and the error is printed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fhir-'));
  const b = JSON.parse(readFileSync(good, 'utf8'));
  assert.ok(setFirst(b, 'valueString', ''));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify(b));
  const r = run(good, bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.json: error: .*valueString/);
  assert.doesNotMatch(r.stderr, /fhir-auditevent-bundle\.json: error/);
});

test('an unknown property and a bad code fail', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fhir-'));
  const b = JSON.parse(readFileSync(good, 'utf8'));
  b.entry[0].resource.action = 'X';
  b.entry[0].resource.bogus = 1;
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify(b));
  const r = run(bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /Unexpected property/);
  assert.match(r.stderr, /not found in value set/);
});
