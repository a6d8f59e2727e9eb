'use strict'
// Build when the output is missing or older than the sources, so `npm start` / `npm run serve` always run current code.
const { existsSync, statSync, readdirSync } = require('node:fs')
const { join } = require('node:path')
const { spawnSync } = require('node:child_process')

const root = join(__dirname, '..')
function newest(dir) {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}
module.exports = function ensureBuilt() {
  const outputs = ['out/host/cli.js', 'out/main/index.js', 'out/renderer/index.html'].map((p) => join(root, p))
  const built = outputs.every(existsSync) ? Math.min(...outputs.map((p) => statSync(p).mtimeMs)) : 0
  if (built > newest(join(root, 'src'))) return
  process.stderr.write('Building ExamForge Ops...\n')
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const r = spawnSync(npm, ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  if (r.status !== 0) {
    process.stderr.write('The build failed; see the messages above.\n')
    process.exit(r.status || 1)
  }
}
