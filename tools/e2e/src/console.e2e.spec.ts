import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnClient } from '@cairn/client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { useBusCluster } from './bus-cluster.spec-helpers';
import { REPO_ROOT } from './fixtures';

/** The page's DOM as the callbacks that run in Chromium use it (this project compiles without lib "dom"). */
interface PageElement {
  getAttribute(name: string): string | null;
  textContent: string | null;
}
declare const document: { querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): Iterable<PageElement> & ArrayLike<PageElement> };

/**
 * Debian's chromium (apt-get install chromium), or $CAIRN_CHROMIUM; null with the reason when
 * none is installed or it cannot start headless here (checked once, synchronously, so the suite
 * can be skipped with that reason instead of failing).
 */
function findChromium(): { path: string | null; why: string } {
  const candidates = [process.env.CAIRN_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter((p): p is string => !!p);
  const path = candidates.find((p) => existsSync(p));
  if (!path) return { path: null, why: `no chromium at ${candidates.join(', ')} (apt-get install -y chromium, or set CAIRN_CHROMIUM)` };
  const probe = spawnSync(path, ['--headless', '--no-sandbox', '--disable-gpu', '--dump-dom', 'about:blank'], { timeout: 30_000, encoding: 'utf8' });
  if (probe.status !== 0) return { path: null, why: `${path} does not start headless: ${probe.error?.message ?? `exit ${probe.status}`} ${probe.stderr?.slice(0, 300) ?? ''}` };
  return { path, why: '' };
}

const browserFound = findChromium();
if (!browserFound.path) process.stderr.write(`console e2e SKIPPED: ${browserFound.why}\n`);
const describeWithChromium = browserFound.path ? describe : describe.skip;

/**
 * Screenshots go to docs/img/console-*.png with CAIRN_CONSOLE_SCREENSHOTS=1 (to refresh the
 * docs' pictures); otherwise to a temp dir, so a test run leaves the tracked files alone.
 */
const SHOTS_DIR = process.env.CAIRN_CONSOLE_SCREENSHOTS === '1' ? join(REPO_ROOT, 'docs/img') : mkdtempSync(join(tmpdir(), 'cairn-console-shots-'));

/**
 * The gateway's web console (/ui, docs/http.md "Web console") in real headless Chromium against a
 * real local cluster: the topology shows 3 replicas with one leader and both storage nodes, a key
 * put through the page's key browser reads back through @cairn/client, the throughput chart's
 * samples grow and count the requests just made, the prefix listing finds the key, a membership
 * action asks for confirmation; no page errors (CSP, module loading) along the way.
 */
describeWithChromium('web console in headless Chromium', () => {
  let client: CairnClient;
  let browser: Browser;
  let page: Page;
  let base: string;
  const pageErrors: string[] = [];
  const e2e = useBusCluster('e2e-console', {}, {
    beforeStop: async () => {
      await browser?.close();
      await client?.close();
    },
  });

  beforeAll(async () => {
    base = `http://127.0.0.1:${e2e.cfg.httpPort}`;
    client = await CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort });
    browser = await chromium.launch({ executablePath: browserFound.path as string, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
    mkdirSync(SHOTS_DIR, { recursive: true });
  });

  it('shows 3 replicas with one leader and both storage nodes', async () => {
    await page.goto(`${base}/ui`);
    expect(page.url()).toBe(`${base}/ui/`);
    // The page polls /v1/cluster every second: wait until every replica's heartbeat is in and one leads.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid=replicas] tbody tr')];
      return rows.length === 3 && rows.filter((r) => r.getAttribute('data-role') === 'leader').length === 1 && rows.every((r) => ['leader', 'follower'].includes(r.getAttribute('data-role') ?? ''));
    }, undefined, { timeout: 15_000 });
    const roles = await page.$$eval('[data-testid=replicas] tbody tr', (rows) => rows.map((r) => [r.getAttribute('data-replica'), r.getAttribute('data-role')]));
    expect(roles.map(([id]) => id)).toEqual(['c1', 'c2', 'c3']);
    expect(roles.filter(([, role]) => role === 'leader')).toHaveLength(1);
    const leaderId = roles.find(([, role]) => role === 'leader')?.[0];
    expect(await page.textContent('[data-testid=leader]')).toBe(`leader ${leaderId}`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=storage] tbody tr:not(.down)').length === 2, undefined, { timeout: 10_000 });
    expect(await page.$$eval('[data-testid=storage] tbody tr', (rows) => rows.map((r) => r.getAttribute('data-node')))).toEqual(['s1', 's2']);
    expect(await page.textContent('[data-testid=gateways] tbody td.id')).toBe('g1');
  });

  it('puts a key through the key browser that reads back through @cairn/client, and finds it by prefix', async () => {
    await page.fill('[data-testid=key]', 'console/hello');
    await page.fill('[data-testid=value]', 'written by headless Chromium ✓');
    await page.click('[data-testid=put]');
    await page.waitForSelector('[data-testid=key-result] >> text=/written at revision \\d+/');
    const revision = Number(/revision (\d+)/.exec((await page.textContent('[data-testid=key-result]')) ?? '')?.[1]);
    const got = await client.get('console/hello');
    expect(got && Buffer.from(got.value).toString('utf8')).toBe('written by headless Chromium ✓');
    expect(got?.revision).toBe(revision);

    await client.set('console/from-client', 'set through the TLV door');
    await page.fill('[data-testid=key]', 'console/from-client');
    await page.click('[data-testid=get]');
    await page.waitForSelector('[data-testid=key-value] >> text=set through the TLV door');

    await page.fill('[data-testid=prefix]', 'console/');
    await page.click('[data-testid=list]');
    await page.waitForSelector('[data-testid=key-list] >> text=console/hello');
    expect(await page.textContent('[data-testid=list-summary]')).toMatch(/^2 keys with this prefix/);
  });

  it('charts the requests: samples grow and the window counts what the doors answered', async () => {
    const samplesOf = () => page.getAttribute('[data-testid=chart-ops]', 'data-samples').then(Number);
    const before = await samplesOf();
    // Traffic on the TLV and HTTP doors for a few samples (bounded: 4 rounds), so the series have a
    // shape. (The RESP door reports no request metrics yet: its series stays at 0.)
    for (let round = 0; round < 4; round++) {
      const sampled = samplesOf();
      await Promise.all(Array.from({ length: 50 + 25 * round }, (_, i) => client.get(i % 2 ? 'console/hello' : 'console/from-client')));
      await Promise.all(Array.from({ length: 5 + 3 * round }, (_, i) => fetch(`${base}/v1/kv/console%2Fload-${i}`, { method: 'PUT', body: `round ${round}` }).then((r) => r.arrayBuffer())));
      // Next round once the page drew another sample.
      const n = await sampled;
      await page.waitForFunction((k) => Number(document.querySelector('[data-testid=chart-ops]')?.getAttribute('data-samples')) > k, n, { timeout: 10_000 });
    }
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=chart-ops]')?.getAttribute('data-samples')) > n + 1, before, { timeout: 10_000 });
    // Every answered request lands in exactly one sample: the window's totals count them all.
    const windowAtLeast = (door: string, n: number) =>
      page.waitForFunction(([d, k]) => Number(document.querySelector(`[data-testid=window-${d}]`)?.textContent?.replace(/,/g, '')) >= k, [door, n] as const, { timeout: 10_000 });
    await windowAtLeast('tlv', 50 + 75 + 100 + 125 + 1); // + the set of the test before
    await windowAtLeast('http', 5 + 8 + 11 + 14 + 2); // + the page's put and get
    expect(await samplesOf()).toBeGreaterThan(before + 1);
    expect(await page.$$('[data-testid=chart-ops] canvas')).toHaveLength(1);
    expect(await page.$$('[data-testid=chart-latency] canvas')).toHaveLength(1);
    await page.screenshot({ path: join(SHOTS_DIR, 'console-overview.png'), fullPage: true });
    const keysCard = await page.$('section:has([data-testid=key])');
    await keysCard?.screenshot({ path: join(SHOTS_DIR, 'console-keys.png') });
  });

  it('asks for confirmation before a membership change, and cancelling changes nothing', async () => {
    await page.click('[data-testid=remove-c3]');
    await page.waitForSelector('[data-testid=confirm-dialog][open] >> text=Remove replica c3?');
    await page.screenshot({ path: join(SHOTS_DIR, 'console-confirm.png') });
    await page.click('[data-testid=confirm-dialog][open] >> text=Cancel');
    await page.waitForSelector('[data-testid=confirm-dialog][open]', { state: 'detached' });
    expect(await page.$('[data-testid=member-busy]')).toBeNull();
    const conf = (await (await fetch(`${base}/v1/cluster/members`)).json()) as { voters: string[] };
    expect(conf.voters).toEqual(['c1', 'c2', 'c3']);
  });

  it('adds a replica through the page (learner, then voter) and removes it again, each after confirmation', async () => {
    await e2e.cluster.join('c4', 'consensus');
    await page.waitForSelector('[data-testid=replicas] tr[data-replica=c4][data-member="not a member"]', { timeout: 10_000 });
    await page.fill('[data-testid=member-id]', 'c4');
    await page.click('form:has([data-testid=member-id]) button[type=submit]');
    await page.click('[data-testid=confirm-dialog][open]:has-text("Add replica c4?") [data-testid=confirm-ok]');
    await page.waitForSelector('section:has([data-testid=conf]) [data-testid=member-outcome].okText', { timeout: 60_000 });
    expect(((await (await fetch(`${base}/v1/cluster/members`)).json()) as { voters: string[] }).voters).toEqual(['c1', 'c2', 'c3', 'c4']);
    await page.waitForSelector('[data-testid=replicas] tr[data-replica=c4][data-member=voter]', { timeout: 10_000 });

    await page.click('[data-testid=remove-c4]');
    await page.click('[data-testid=confirm-dialog][open]:has-text("Remove replica c4?") [data-testid=confirm-ok]');
    await page.waitForSelector('section:has([data-testid=replicas]) [data-testid=member-outcome].okText', { timeout: 60_000 });
    expect(((await (await fetch(`${base}/v1/cluster/members`)).json()) as { voters: string[] }).voters).toEqual(['c1', 'c2', 'c3']);
    await page.waitForSelector('[data-testid=replicas] tr[data-replica=c4][data-member="not a member"]', { timeout: 10_000 });
    await e2e.cluster.forget('c4');
  });

  it('marks a storage node that stopped as down, with when it was last heard from', async () => {
    await e2e.cluster.kill('s2');
    await page.waitForSelector('[data-testid=storage] tr.down[data-node=s2] >> text=/\\d\\d:\\d\\d:\\d\\d/', { timeout: 10_000 });
    expect(await page.$('[data-testid=storage] tr.down[data-node=s1]')).toBeNull();
    const topology = await page.$('section:has([data-testid=replicas])');
    await topology?.screenshot({ path: join(SHOTS_DIR, 'console-down.png') });
    expect(pageErrors).toEqual([]);
  });
});
