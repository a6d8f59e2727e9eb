/** Byte counts for people (1024-based), shared by the CLI, core messages and the UI. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  let v = n
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`
}

/** A connection's transport in a few words (Health tiles, the CLI): how it travels and whether the peer was verified. */
export function transportText(t: { encrypted: boolean; verified: boolean; loopback: boolean } | null | undefined): string | null {
  if (!t) return null
  if (t.encrypted) return t.verified ? 'Encrypted, verified' : 'Encrypted, not verified'
  return t.loopback ? 'Clear text (loopback)' : 'Not encrypted'
}
