#!/usr/bin/env node
'use strict'
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const cli = join(__dirname, '..', 'out', 'host', 'cli.js')
if (!existsSync(cli)) {
  process.stderr.write('examforge-ops is not built yet: run "npm run build" in ' + join(__dirname, '..') + ' first.\n')
  process.exit(70)
}
const { main } = require(cli)
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write('examforge-ops: ' + (e && e.name === 'OpsError' ? e.message : (e && e.stack) || String(e)) + '\n')
    // As out/host/cli.js itself: an explained failure exits 1, bad arguments 64, anything else (a bug) 70.
    process.exit(e && e.name === 'OpsError' ? (e.code === 'bad_argument' ? 64 : 1) : 70)
  },
)
