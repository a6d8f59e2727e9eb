#!/usr/bin/env node
'use strict'
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const cli = join(__dirname, '..', 'out', 'host', 'cli.js')
if (!existsSync(cli)) {
  process.stderr.write('examforge-ops is not built yet: run "npm run build" in ' + join(__dirname, '..') + ' first.\n')
  process.exit(70)
}
// main() turns every outcome into an exit code (0, 1, 2, 64, 70: see src/host/cli-command.ts); the catch is a last resort.
require(cli)
  .main(process.argv.slice(2))
  .then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write('examforge-ops: internal error: ' + ((e && e.message) || String(e)) + '\n')
      process.exit(70)
    },
  )
