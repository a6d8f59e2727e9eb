import { spawnSync } from 'node:child_process'

/**
 * `promtool check metrics`: Prometheus' own parser and linter for the text exposition format (Debian's
 * `prometheus` package; .ci/run installs it). Chosen over an npm parser because it is the reference
 * implementation, and it also lints the conventions (_total counters, base units, help text).
 */
export function promtoolCheck(text: string): { code: number; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  if (r.error)
    throw new Error(`promtool is not installed (${r.error.message}): apt-get install prometheus (Debian's package has promtool).`)
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}`.trim() }
}
