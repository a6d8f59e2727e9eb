#!/usr/bin/env node
'use strict'
// npm start: the Electron console on the built app.
const { spawn, spawnSync } = require('node:child_process')
const { join } = require('node:path')
const { electronPackageDir, installedElectron } = require('./electron-binary.cjs')
require('./ensure-built.cjs')()
let binary = installedElectron()
const pkg = electronPackageDir()
if (!binary && pkg) {
  // The electron package fetches its binary on first use, not at install: do it now, once.
  process.stderr.write('Downloading the Electron binary (first start; needs internet)...\n')
  spawnSync(process.execPath, [join(pkg, 'install.js')], { stdio: 'inherit' })
  binary = installedElectron()
}
if (!binary) {
  process.stderr.write(
    'The Electron binary is not installed and could not be downloaded (no internet?).\n' +
      'Run "node node_modules/electron/install.js" on a machine with internet, or open the same console in a browser with "npm run serve".\n',
  )
  process.exit(1)
}
const child = spawn(binary, [join(__dirname, '..')], { stdio: 'inherit', env: { ...process.env, ELECTRON_RUN_AS_NODE: undefined } })
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)))
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
