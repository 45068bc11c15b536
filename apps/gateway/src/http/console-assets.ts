import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** One file of the console, held in memory with its response headers. */
export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
  /** Strong validator: `"<sha-256 of the body, base64url, 22 chars>"`. */
  etag: string;
  cacheControl: string;
}

/** Total bytes of every console file held in memory (today ~190 KB, uPlot's 145 KB the most); beyond, the console is off. */
export const CONSOLE_ASSETS_BYTES_MAX = 2 * 1024 * 1024;

/** The gateway's own console files (apps/gateway/ui), relative to that folder: served under `/ui/<name>`. */
export const CONSOLE_FILES = ['index.html', 'console.css', 'app.js', 'api.js', 'topology.js', 'charts.js', 'members.js', 'keys.js'] as const;

/**
 * Third-party ES modules served from the installed packages (no CDN, no bundler): URL name under
 * `/ui/vendor/<package>@<version>/`, the package, its file. `specifier` is the bare import the
 * console's modules use, mapped by the page's import map.
 */
const VENDOR: { specifier: string | null; pkg: string; file: string; stylesheet?: true }[] = [
  { specifier: 'preact', pkg: 'preact', file: 'dist/preact.mjs' },
  { specifier: 'preact/hooks', pkg: 'preact', file: 'hooks/dist/hooks.mjs' },
  { specifier: 'htm', pkg: 'htm', file: 'dist/htm.mjs' },
  { specifier: 'uplot', pkg: 'uplot', file: 'dist/uPlot.esm.js' },
  { specifier: null, pkg: 'uplot', file: 'dist/uPlot.min.css', stylesheet: true },
];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
};

/** Our files change with the gateway: revalidate every time (ETag → 304). Vendor URLs carry the package version: cache for good. */
const REVALIDATE = 'no-cache';
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** The placeholder in index.html replaced by the vendor stylesheets and the import map (inline: its hash goes into the CSP). */
const VENDOR_MARK = '<!--vendor-->';

/** Why the console cannot be served (missing file, over the bound): `/ui` answers 503 with this. */
export class ConsoleAssetsError extends Error {
  readonly code = 'CONSOLE_ASSETS';
}

/**
 * The web console's static files (docs/http.md "Web console"): a fixed table built once at
 * start-up from apps/gateway/ui and the installed preact, htm and uplot packages, held in memory
 * (at most CONSOLE_ASSETS_BYTES_MAX). A request is looked up by its exact path in the table, so
 * nothing in a URL ever reaches the file system (no traversal, no directory listing).
 * If a file is missing or the total is over the bound, `error` says why and no asset is served:
 * the gateway itself keeps running.
 */
export class ConsoleAssets {
  private readonly assets = new Map<string, ConsoleAsset>();
  /** Content-Security-Policy of the page: scripts from this origin plus the inline import map's hash. */
  readonly csp: string;
  readonly error: ConsoleAssetsError | null = null;

  /** `uiDir`: the console's folder (default apps/gateway/ui, next to dist/ and src/). `bytesMax`: tests lower it. */
  constructor(uiDir = resolve(__dirname, '../../ui'), bytesMax = CONSOLE_ASSETS_BYTES_MAX) {
    let importMap = '';
    try {
      const imports: Record<string, string> = {};
      const links: string[] = [];
      const files: { name: string; body: Buffer; cache: string }[] = [];
      for (const v of VENDOR) {
        const dir = packageDir(v.pkg);
        const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
        const name = `vendor/${v.pkg}@${version}/${v.file.split('/').pop()}`;
        files.push({ name, body: readFileSync(join(dir, v.file)), cache: IMMUTABLE });
        if (v.specifier) imports[v.specifier] = `/ui/${name}`;
        if (v.stylesheet) links.push(`<link rel="stylesheet" href="/ui/${name}">`);
      }
      importMap = JSON.stringify({ imports });
      const vendorHead = [...links, `<script type="importmap">${importMap}</script>`].join('\n');
      for (const f of CONSOLE_FILES) {
        let body = readFileSync(join(uiDir, f));
        if (f === 'index.html') body = Buffer.from(body.toString('utf8').replace(VENDOR_MARK, vendorHead));
        files.push({ name: f, body, cache: REVALIDATE });
      }
      const total = files.reduce((n, f) => n + f.body.length, 0);
      if (total > bytesMax) throw new ConsoleAssetsError(`console files are ${total} bytes; the bound is ${bytesMax}`);
      for (const f of files) this.assets.set(f.name, { body: f.body, contentType: typeOf(f.name), etag: etagOf(f.body), cacheControl: f.cache });
      // `/ui/` is the page itself.
      this.assets.set('', this.assets.get('index.html') as ConsoleAsset);
    } catch (e) {
      this.assets.clear();
      this.error = e instanceof ConsoleAssetsError ? e : new ConsoleAssetsError(`console files unavailable: ${(e as Error).message}`);
    }
    const scriptHash = createHash('sha256').update(importMap).digest('base64');
    this.csp = [
      "default-src 'self'",
      `script-src 'self' 'sha256-${scriptHash}'`,
      // uPlot sizes its canvas and legend with inline styles.
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data:",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ');
  }

  /** The asset at `/ui/<name>` (name without the `/ui/` prefix, no query), or undefined: no such file. */
  get(name: string): ConsoleAsset | undefined {
    return this.assets.get(name);
  }

  /** Bytes held (0 when the console is off). */
  bytes(): number {
    let n = 0;
    for (const [name, a] of this.assets) if (name !== '') n += a.body.length;
    return n;
  }
}

function typeOf(name: string): string {
  const ext = name.slice(name.lastIndexOf('.'));
  const t = TYPES[ext];
  if (!t) throw new ConsoleAssetsError(`no content type for ${name}`);
  return t;
}

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
}

/** The installed package's folder: from its resolved entry point up to the package.json naming it (htm exports no ./package.json). */
function packageDir(pkg: string): string {
  let dir = dirname(require.resolve(pkg));
  for (;;) {
    try {
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (json.name === pkg) return dir;
    } catch {
      // no package.json at this level: keep climbing
    }
    const up = dirname(dir);
    if (up === dir) throw new ConsoleAssetsError(`package ${pkg} not found`);
    dir = up;
  }
}
