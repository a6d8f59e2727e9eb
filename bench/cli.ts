import { spawn } from 'node:child_process'

/**
 * The built CLI in a process of its own, as an operator runs it (its own `main`, so the process can say its
 * peak RSS as it exits): wall seconds, peak RSS in MB and the parsed JSON it printed. The environment is
 * only what is given (plus PATH and HOME), so the machine's own settings never leak into a measurement.
 */
export function runCli(
  cliJs: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ seconds: number; maxRssMB: number; out: Record<string, unknown> }> {
  const script = `const { main } = require(${JSON.stringify(cliJs)});
    main(${JSON.stringify(args)}).then((c) => { process.stderr.write('MAXRSS ' + process.resourceUsage().maxRSS + '\\n'); process.exit(c) })`
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, ['-e', script], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, OPS_LOG_LEVEL: 'error', ...env },
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => {
      const seconds = (performance.now() - t0) / 1000
      if (code !== 0) return reject(new Error(`examforge-ops ${args[0]} failed (${code}): ${err} ${out.slice(0, 2000)}`))
      resolve({ seconds, maxRssMB: Math.round(Number(/MAXRSS (\d+)/.exec(err)?.[1] ?? 0) / 1024), out: JSON.parse(out) })
    })
  })
}
