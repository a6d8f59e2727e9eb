#!/usr/bin/env node
'use strict'
// npm test: lint, type-check, build (the CLI, Electron shell and e2e tests use the built app), then every test.
// Ends with one plain line "tests: N passed, N failed, N skipped".
const { spawnSync } = require('node:child_process')
const { existsSync, readFileSync, mkdirSync, rmSync } = require('node:fs')
const { join } = require('node:path')

const root = join(__dirname, '..')
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx'
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status

const vitestArgs = process.argv.slice(2)
const steps = [
  ['lint', npm, ['run', '--silent', 'lint']],
  ['typecheck', npm, ['run', '--silent', 'typecheck']],
  ['build', npm, ['run', '--silent', 'build']],
  // The error-tracker SDK the web app installs: its own build (plain tsc), tested from its source and its dist.
  ['sdk build', npx, ['tsc', '-p', 'packages/error-tracker/tsconfig.json']],
]
for (const [name, cmd, args] of steps) {
  process.stderr.write(`\n== ${name} ==\n`)
  const code = run(cmd, args)
  if (code !== 0) {
    process.stderr.write(`\n${name} failed (exit ${code}).\ntests: 0 passed, 1 failed\n`)
    process.exit(1)
  }
}
mkdirSync(join(root, 'test-results'), { recursive: true })
const report = join(root, 'test-results', 'vitest.json')
process.stderr.write('\n== tests ==\n')
rmSync(report, { force: true })
const code = run(npx, ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...vitestArgs])
// The verdict is the report's, not only vitest's exit code: a suite whose hook failed must fail the run.
let ok = false
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'))
  const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0)
  const failed = r.numFailedTests + (r.numFailedTests ? 0 : r.numFailedTestSuites || 0)
  ok = code === 0 && r.success === true && failed === 0
  process.stdout.write(`\ntests: ${r.numPassedTests} passed, ${ok ? 0 : Math.max(1, failed)} failed, ${skipped} skipped\n`)
} else {
  process.stdout.write('\ntests: 0 passed, 1 failed\n')
}
process.exit(ok ? 0 : 1)
