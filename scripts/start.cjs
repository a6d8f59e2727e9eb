#!/usr/bin/env node
'use strict'
// npm start: the Electron console on the built app.
const { existsSync } = require('node:fs')
const { spawn } = require('node:child_process')
const { join } = require('node:path')
require('./ensure-built.cjs')()
let binary = null
try {
  binary = require('electron') // the path of the Electron binary, when it was downloaded at install
} catch {
  binary = null
}
if (!binary || !existsSync(binary)) {
  process.stderr.write(
    'The Electron binary is not installed (it is skipped when ELECTRON_SKIP_BINARY_DOWNLOAD=1 or without internet).\n' +
      'Install it with "node node_modules/electron/install.js" on a machine with internet, or run the same console in a browser with "npm run serve".\n',
  )
  process.exit(1)
}
const child = spawn(binary, [join(__dirname, '..')], { stdio: 'inherit', env: { ...process.env, ELECTRON_RUN_AS_NODE: undefined } })
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)))
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
