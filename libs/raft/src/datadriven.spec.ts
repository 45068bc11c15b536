import * as fs from 'node:fs';
import * as path from 'node:path';
import { runScript } from './testing';

/**
 * Data-driven Raft tests (etcd raft/testdata style): each libs/raft/testdata/*.txt script runs
 * and must print exactly the output written under each directive. After an intended behaviour
 * change, rewrite the expected outputs with CAIRN_DATADRIVEN_REWRITE=1 and review the diff.
 */
const dir = path.join(__dirname, '..', 'testdata');
const rewrite = process.env.CAIRN_DATADRIVEN_REWRITE === '1';
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

describe('datadriven', () => {
  it('has scripts', () => expect(files.length).toBeGreaterThan(0));

  it.each(files)('%s', (f) => {
    const file = path.join(dir, f);
    const want = fs.readFileSync(file, 'utf8');
    const got = runScript(want);
    if (rewrite) fs.writeFileSync(file, got);
    else expect(got).toBe(want);
  });
});
