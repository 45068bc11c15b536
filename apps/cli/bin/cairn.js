#!/usr/bin/env node
// The `cairn` bin of package.json. A committed file, not dist/main.js: npm links a workspace's bin
// into node_modules/.bin at `npm ci` only when the file exists, and on a fresh clone dist/ is built
// after the install, so a bin pointing into dist/ was never linked and `npx cairn` went to the
// registry instead (docs/cli.md).
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const main = join(__dirname, '..', 'dist', 'main.js');
if (!existsSync(main)) {
  process.stderr.write(`cairn: ${main} is not built yet: run \`npm run build\` (or \`npx nx build cli\`) first\n`);
  process.exit(2);
}
require(main);
