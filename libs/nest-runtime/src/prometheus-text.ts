import { request } from 'node:http';

/**
 * Prometheus text format 0.0.4: every line is a comment (# HELP / # TYPE name type) or
 * `name{labels} value`; every sample's family has a TYPE line. Returns samples by `name{labels}`.
 * Used by tests to check a scrape. @throws Error naming the first line that does not parse.
 */
export function parsePrometheusText(text: string): Map<string, number> {
  const typed = new Set<string>();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      typed.add(t[1]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`not Prometheus text format: ${JSON.stringify(line)}`);
    // Go's ParseFloat, which Prometheus uses: NaN and ±Inf in any case.
    const value = Number(m[3].replace(/^([+-]?)inf$/i, '$1Infinity'));
    if (Number.isNaN(value) && !/^nan$/i.test(m[3])) throw new Error(`bad sample value: ${line}`);
    const family = m[1].replace(/_(bucket|sum|count|total|created)$/, '');
    if (!typed.has(m[1]) && !typed.has(family)) throw new Error(`sample without a TYPE line: ${line}`);
    out.set(m[1] + (m[2] ?? '{}'), value);
  }
  return out;
}

/** GET `path` on 127.0.0.1:`port` over a real socket (tests): status, content type and body. */
export function httpGet(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    })
      .on('error', reject)
      .end();
  });
}

/**
 * GETs `/metrics` on 127.0.0.1:`port` (tests) and parses it as parsePrometheusText does.
 * @throws Error when the answer is not 200, or as parsePrometheusText.
 */
export async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const res = await httpGet(port, '/metrics');
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${res.body.slice(0, 200)}`);
  return parsePrometheusText(res.body);
}
