// Generates the pages' protobuf code, src/gen/, from proto/ (the schemas prost compiles for the
// Rust side) with buf and protoc-gen-es, as buf.gen.yaml says. Both come from node_modules (npm
// ci): buf's npm package carries its binary, and nothing is fetched.
//   node tools/gen.mjs           regenerate src/gen/
//   node tools/gen.mjs --check   generate into a temporary folder and fail if src/gen/ differs
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const GEN = join('src', 'gen');
const out = check ? mkdtempSync(join(tmpdir(), 'medledger-web-gen-')) : root;

const bin = join(root, 'node_modules', '.bin');
const buf = spawnSync(join(bin, process.platform === 'win32' ? 'buf.cmd' : 'buf'), ['generate', '--template', 'buf.gen.yaml', '--output', out], {
  cwd: root,
  stdio: 'inherit',
  // buf finds the local plugin protoc-gen-es on PATH.
  env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` },
  shell: process.platform === 'win32',
});
if (buf.status !== 0) {
  if (check) rmSync(out, { recursive: true, force: true });
  console.error(`buf generate failed (${buf.error?.message ?? `exit ${buf.status}`}); run \`npm ci\` in web/ first`);
  process.exit(1);
}

if (!check) {
  console.log('generated web/src/gen from proto/');
} else {
  const list = (d) => {
    try {
      return readdirSync(d, { recursive: true })
        .map(String)
        .filter((f) => statSync(join(d, f)).isFile())
        .sort();
    } catch {
      return [];
    }
  };
  const want = list(join(out, GEN));
  const have = list(join(root, GEN));
  const problems = [];
  for (const f of new Set([...want, ...have])) {
    if (!want.includes(f)) problems.push(`src/gen/${f} is not generated any more`);
    else if (!have.includes(f)) problems.push(`src/gen/${f} is missing`);
    else if (!readFileSync(join(out, GEN, f)).equals(readFileSync(join(root, GEN, f)))) problems.push(`src/gen/${f} differs from a fresh generation`);
  }
  rmSync(out, { recursive: true, force: true });
  if (want.length === 0) problems.push('buf generated nothing');
  if (problems.length) {
    console.error(`web/src/gen is stale (run \`npm run gen\` in web/ and commit src/gen):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`web/src/gen matches proto/ (${want.length} files)`);
}
