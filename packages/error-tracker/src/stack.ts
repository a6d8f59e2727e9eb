/** V8 stack text to Sentry frames (oldest call first). Frames in node_modules or Node's own are not in-app. */
export interface SentryFrame {
  function?: string
  filename?: string
  abs_path?: string
  module?: string
  lineno?: number
  colno?: number
  in_app: boolean
}

const LINE = /^\s*at (?:(.+?) \((.+?):(\d+):(\d+)\)|(.+?):(\d+):(\d+))$/

export function parseStack(stack: string | undefined, max = 100): SentryFrame[] {
  if (!stack) return []
  const frames: SentryFrame[] = []
  for (const line of stack.split('\n')) {
    const m = LINE.exec(line)
    if (!m) continue
    const file = (m[2] ?? m[5]).replace(/^file:\/\//, '')
    const cwd = typeof process !== 'undefined' ? process.cwd() : ''
    frames.push({
      function: m[1]?.replace(/^async /, ''),
      filename: cwd && file.startsWith(cwd + '/') ? file.slice(cwd.length + 1) : file,
      abs_path: file,
      lineno: Number(m[3] ?? m[6]),
      colno: Number(m[4] ?? m[7]),
      in_app: !/node_modules|^node:|^internal\/|^native$/.test(file),
    })
    if (frames.length >= max) break
  }
  return frames.reverse()
}
