import { scrub } from './scrub'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  child(scope: string): Logger
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export type LogSink = (line: string, level: LogLevel) => void

const stderrSink: LogSink = (line) => process.stderr.write(line + '\n')

/** A logger whose every line is scrubbed of secrets before it is written anywhere. */
export function createLogger(opts: { level?: LogLevel; sink?: LogSink; scope?: string } = {}): Logger {
  const min = order[opts.level ?? ((process.env.OPS_LOG_LEVEL as LogLevel) || 'info')] ?? 20
  const sink = opts.sink ?? stderrSink
  const scope = opts.scope ?? 'ops'
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < min) return
    let extra = ''
    if (fields && Object.keys(fields).length) {
      try {
        extra = ' ' + JSON.stringify(fields, (_k, v) => (v instanceof Error ? v.message : v))
      } catch {
        extra = ' [unserialisable fields]'
      }
    }
    sink(scrub(`${new Date().toISOString()} ${level.toUpperCase()} [${scope}] ${msg}${extra}`), level)
  }
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (s) => createLogger({ ...opts, scope: `${scope}:${s}` }),
  }
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
}
