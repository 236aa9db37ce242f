// Copies the browser's Yjs modules from the npm packages pinned in package-lock.json into
// web/vendor/, unchanged, and writes the import map the server puts into every page.
//
//   node tests/interop/vendor.mjs           # after `npm ci --prefix tests/interop`: (re)write web/vendor/
//   node tests/interop/vendor.mjs --check   # exit 1 unless web/vendor/ is exactly what the lock gives
//
// Starting from the entry points below, it follows every static `import`/`export … from` of each
// module, resolving a bare specifier through its package's `exports` with the conditions a browser
// uses (browser, module, import, default), and copies each file it reaches to
// web/vendor/<package>/<path>. web/vendor/importmap.json maps every bare specifier met to its
// copy's URL; web/vendor/MANIFEST.json names the packages, their versions (from the lock) and each
// file's SHA-256. `--check` rebuilds all of that in memory and compares it byte for byte with what
// is committed (tests/web.rs runs it), so the embedded copies cannot drift from the lock.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, 'node_modules');
const out = join(here, '..', '..', 'web', 'vendor');
const URL_BASE = '/web/vendor';

/// What the pages import.
const ENTRIES = ['yjs', 'y-websocket', 'y-protocols/awareness', 'y-protocols/sync'];
const CONDITIONS = ['browser', 'module', 'import', 'default'];

function splitSpecifier(spec) {
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const sub = spec.slice(name.length);
  return { name, subpath: sub ? `.${sub}` : '.' };
}

function pickCondition(target) {
  if (typeof target === 'string') return target;
  if (target == null || typeof target !== 'object') return null;
  for (const c of CONDITIONS) {
    if (c in target) {
      const r = pickCondition(target[c]);
      if (r) return r;
    }
  }
  return null;
}

function packageJson(name) {
  return JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8'));
}

/// `{pkg, file}`: the package and the file (relative to it) a bare specifier means in a browser.
function resolveBare(spec) {
  const { name, subpath } = splitSpecifier(spec);
  const pkg = packageJson(name);
  let file = null;
  if (pkg.exports) {
    const e = pkg.exports;
    const bySubpath = typeof e === 'object' && Object.keys(e).some((k) => k.startsWith('.'));
    file = pickCondition(bySubpath ? e[subpath] : subpath === '.' ? e : null);
  } else if (subpath === '.') {
    file = pkg.module ?? pkg.main;
  } else {
    file = subpath;
  }
  if (!file) throw new Error(`cannot resolve ${spec} for a browser`);
  return { pkg: name, file: posix.normalize(file) };
}

const IMPORT = /(?:^|[\n;])\s*(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]/g;

function importsOf(source) {
  return [...source.matchAll(IMPORT)].map((m) => m[1]);
}

/// Everything the entries reach: files (`pkg/path` → bytes) and the import map.
function collect() {
  const files = new Map();
  const imports = {};
  const queue = [];
  const visit = (pkg, file) => {
    const key = `${pkg}/${file}`;
    if (files.has(key)) return;
    const bytes = readFileSync(join(modules, pkg, file));
    files.set(key, bytes);
    queue.push({ pkg, file, source: bytes.toString('utf8') });
  };
  const bare = (spec) => {
    const r = resolveBare(spec);
    imports[spec] = `${URL_BASE}/${r.pkg}/${r.file}`;
    visit(r.pkg, r.file);
  };
  for (const e of ENTRIES) bare(e);
  while (queue.length) {
    const { pkg, file, source } = queue.shift();
    for (const spec of importsOf(source)) {
      if (spec.startsWith('.')) {
        visit(pkg, posix.normalize(posix.join(posix.dirname(file), spec)));
      } else if (spec.startsWith('/') || /^[a-z]+:/.test(spec)) {
        throw new Error(`${pkg}/${file}: unexpected import ${spec}`);
      } else {
        bare(spec);
      }
    }
  }
  // Their licences travel with them.
  for (const name of new Set([...files.keys()].map((k) => splitSpecifier(k).name))) {
    for (const f of ['LICENSE', 'LICENSE.md', 'LICENSE.txt']) {
      if (existsSync(join(modules, name, f))) files.set(`${name}/${f}`, readFileSync(join(modules, name, f)));
    }
  }
  const lock = JSON.parse(readFileSync(join(here, 'package-lock.json'), 'utf8'));
  const packages = {};
  for (const key of [...files.keys()]) {
    const name = splitSpecifier(key).name;
    const locked = lock.packages?.[`node_modules/${name}`]?.version;
    const installed = packageJson(name).version;
    if (locked !== installed) {
      throw new Error(`${name}: node_modules has ${installed}, the lock ${locked}: run npm ci --prefix tests/interop`);
    }
    packages[name] = installed;
  }
  const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  const manifest = {
    note: 'Written by tests/interop/vendor.mjs from the packages in tests/interop/package-lock.json: do not edit.',
    packages: sorted(packages),
    files: sorted(Object.fromEntries([...files].map(([k, v]) => [k, createHash('sha256').update(v).digest('hex')]))),
  };
  return {
    files,
    importmap: `${JSON.stringify({ imports: sorted(imports) }, null, 1)}\n`,
    manifest: `${JSON.stringify(manifest, null, 1)}\n`,
  };
}

function listTree(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? listTree(p) : [p];
  });
}

const want = collect();
const expected = new Map([...want.files].map(([k, v]) => [k, v]));
expected.set('importmap.json', Buffer.from(want.importmap));
expected.set('MANIFEST.json', Buffer.from(want.manifest));

if (process.argv.includes('--check')) {
  const problems = [];
  const present = new Set(listTree(out).map((p) => relative(out, p).split('\\').join('/')));
  for (const [k, v] of expected) {
    if (!present.has(k)) problems.push(`missing: web/vendor/${k}`);
    else if (!readFileSync(join(out, k)).equals(v)) problems.push(`differs from the lock's package: web/vendor/${k}`);
    present.delete(k);
  }
  for (const k of present) problems.push(`not from the lock: web/vendor/${k}`);
  if (problems.length) {
    console.error(`web/vendor/ is not what the lock gives (run node tests/interop/vendor.mjs):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`web/vendor/: ${expected.size} files match ${Object.entries(JSON.parse(want.manifest).packages).map(([n, v]) => `${n}@${v}`).join(', ')}`);
} else {
  rmSync(out, { recursive: true, force: true });
  for (const [k, v] of expected) {
    mkdirSync(dirname(join(out, k)), { recursive: true });
    writeFileSync(join(out, k), v);
  }
  console.log(`wrote ${expected.size} files to web/vendor/`);
}
