#!/usr/bin/env node
'use strict'
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const cli = join(__dirname, '..', 'out', 'host', 'cli.js')
// Exit once stdout and stderr have taken everything written (process.exit() alone cuts what a pipe still holds).
const exit = (code) => {
  let left = 2
  const done = () => --left === 0 && process.exit(code)
  process.stdout.write('', done)
  process.stderr.write('', done)
}
if (!existsSync(cli)) {
  process.stderr.write('examforge-ops is not built yet: run "npm run build" in ' + join(__dirname, '..') + ' first.\n')
  process.exit(70)
}
// main() turns every outcome into an exit code (0, 1, 2, 64, 70: see src/host/cli-command.ts); the catch is a last resort.
require(cli)
  .main(process.argv.slice(2))
  .then(
    (code) => exit(code),
    (e) => {
      process.stderr.write('examforge-ops: internal error: ' + ((e && e.message) || String(e)) + '\n')
      exit(70)
    },
  )
