import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { waitFor } from './wait'

/**
 * How the end-to-end specs run the console in a browser: the built host (`examforge-ops serve`, what
 * `npm run serve` runs) in a process of its own with only the environment the spec gives it, its output kept
 * and its launch link awaited; and Debian's Chromium, launched the same way by every spec.
 */

export const root = resolve(__dirname, '../..')
export const shots = join(root, 'test-results', 'screenshots')
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CLI = join(root, 'out/host/cli.js')

/** Fail at once, saying what to do, when the host is not built (or, for a browser spec, Chromium is missing). */
export function needBuilt({ chromium: browser = true } = {}): void {
  if (browser && !existsSync(CHROMIUM))
    throw new Error(`No Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH.`)
  if (!existsSync(CLI)) throw new Error('The host is not built: run "npm run build" (npm test does it first).')
}

/** A served host's environment: PATH, HOME and LANG from here, then the spec's settings (nothing else leaks in). */
export function hostEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), LANG: 'C.UTF-8', ...env }
}

export interface ServedHost {
  proc: ChildProcess
  /** The launch link it printed (good for one sign-in). */
  url: string
  /** Everything it has printed so far, stdout and stderr. */
  output(): string
  /** SIGTERM, and wait until it has exited (at once if it already has). */
  stop(): Promise<void>
}

/**
 * Start the built host on `port` (0: any free one) with exactly `env`, and wait for the launch link it prints.
 * `ownGroup`: in a process group of its own with the processes it starts, as a terminal runs it (a Ctrl+C there
 * reaches them all).
 */
export async function serveHost(env: Record<string, string>, { port = 0, timeoutMs = 60_000, ownGroup = false } = {}): Promise<ServedHost> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', String(port)], { cwd: root, env, detached: ownGroup })
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  const served: ServedHost = { proc, url: '', output: () => out, stop: () => stopProcess(proc) }
  served.url = await waitFor<string>(
    () => /http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.exec(out)?.[0] ?? '',
    'the host to print its URL',
    timeoutMs,
  ).catch(async (e: Error) => {
    await served.stop()
    throw new Error(`${e.message}. Host output: ${out}`)
  })
  return served
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise((r) => proc.once('exit', r))
  proc.kill('SIGTERM')
  await exited
}

/** Debian's Chromium, headless, as every spec launches it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
}
