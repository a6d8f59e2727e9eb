#!/usr/bin/env node
'use strict'
// npm run serve: the headless host on 127.0.0.1, serving the console to a browser.
require('./ensure-built.cjs')()
const { main } = require('../out/host/cli.js')
main(['serve', ...process.argv.slice(2)]).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`examforge-ops: ${e && e.name === 'OpsError' ? e.message : (e && e.stack) || e}\n`)
    process.exit(70)
  },
)
