import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(__dirname, '../..')

/** Run the CLI as an operator would: `npx examforge-ops ...` from the project root, after `npm run build`. */
export function cli(args: string[], env: Record<string, string> = {}) {
  if (!existsSync(join(root, 'out/host/cli.js'))) throw new Error('The CLI is not built: run "npm run build" (npm test does it first).')
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    const child = spawn('npx', ['--no-install', 'examforge-ops', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-cli-')), ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }))
  })
}
