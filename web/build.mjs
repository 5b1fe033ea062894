// Builds web/dist deterministically: dist/patient.html, dist/auditor.html and
// dist/assets/{patient.js,auditor.js,style.css}. No content hashes, timestamps or absolute paths.
//   node build.mjs           build into dist/
//   node build.mjs --check   build into a temporary folder and fail if dist/ differs from it
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes('--check');
const dist = join(root, 'dist');
const out = check ? mkdtempSync(join(tmpdir(), 'medledger-web-')) : dist;

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { patient: 'src/ui/patient.ts', auditor: 'src/ui/auditor.ts' },
  outdir: join(out, 'assets'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
});
for (const page of ['patient.html', 'auditor.html']) copyFileSync(join(root, 'pages', page), join(out, page));
copyFileSync(join(root, 'pages', 'style.css'), join(out, 'assets', 'style.css'));

if (!check) {
  console.log('built web/dist');
} else {
  const list = (d) =>
    readdirSync(d, { recursive: true })
      .map(String)
      .filter((f) => statSync(join(d, f)).isFile())
      .sort();
  const want = list(out);
  let have = [];
  try {
    have = list(dist);
  } catch {
    have = [];
  }
  const problems = [];
  for (const f of new Set([...want, ...have])) {
    if (!want.includes(f)) problems.push(`dist/${f} is not built any more`);
    else if (!have.includes(f)) problems.push(`dist/${f} is missing`);
    else if (!readFileSync(join(out, f)).equals(readFileSync(join(dist, f)))) problems.push(`dist/${f} differs from a fresh build`);
  }
  rmSync(out, { recursive: true, force: true });
  if (problems.length) {
    console.error(`web/dist is stale (run \`npm run build\` in web/ and commit dist):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`web/dist matches a fresh build (${relative(root, dist)}: ${want.length} files)`);
}
