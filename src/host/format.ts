import { statusRank, type BackupSetSummary, type HealthResult, type HealthSnapshot } from '../shared/domain'
import type { LatestValue } from '../shared/metrics'
import { formatBytes } from '../core/health/probe'
import { formatTime, plural, transportText } from '../shared/format'
import { scrub } from '../core/log/scrub'

/** 0 when every configured check is healthy, 1 when any is degraded, 2 when any is unhealthy. */
export function healthExitCode(results: Pick<HealthResult, 'status'>[]): number {
  const worst = Math.max(0, ...results.map((r) => statusRank[r.status]))
  return worst >= statusRank.unhealthy ? 2 : worst >= statusRank.degraded ? 1 : 0
}

const colours: Record<string, string> = { healthy: '32', degraded: '33', unhealthy: '31', not_configured: '90' }

export function renderHealth(snap: HealthSnapshot, colour = false): string {
  const label = Math.max(...snap.results.map((r) => r.label.length), 7)
  const lines = snap.results.map((r) => {
    const status = r.status.replace('_', ' ').padEnd(14)
    const lat = r.latencyMs == null ? '—'.padStart(8) : `${Math.round(r.latencyMs)} ms`.padStart(8)
    const s = colour ? `\x1b[${colours[r.status]}m${status}\x1b[0m` : status
    const transport = transportText(r.transport)
    return `${r.label.padEnd(label)}  ${s}${lat}  ${scrub(r.reason)}${transport ? `  [${transport}]` : ''}`
  })
  return [`Overall: ${snap.overall.replace('_', ' ')}`, ...lines].join('\n')
}

/** Rows of cells as aligned columns (two spaces apart); columns listed in `right` are right-aligned. Trailing blanks trimmed. */
export function columns(rows: string[][], right: number[] = []): string[] {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)))
  return rows.map((r) =>
    r
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  )
}

/** What an incremental set holds, in words: "12 transactions: 30 inserts, 5 updates, 2 deletes". */
export function changesText(c: NonNullable<BackupSetSummary['changes']>): string {
  if (!c.transactions) return 'no changes'
  const parts = [
    c.inserts && plural(c.inserts, 'insert'),
    c.updates && plural(c.updates, 'update'),
    c.deletes && plural(c.deletes, 'delete'),
    c.truncates && plural(c.truncates, 'truncate'),
  ].filter(Boolean)
  return `${plural(c.transactions, 'transaction')}${parts.length ? `: ${parts.join(', ')}` : ''}`
}

/** What a set holds: tables and rows for a full (or safety) set, the changes for an incremental. */
export function contentsText(s: Pick<BackupSetSummary, 'type' | 'tables' | 'rows' | 'changes'>): string {
  if (s.type === 'incremental' && s.changes) return changesText(s.changes)
  return `${plural(s.tables, 'table')}, ${plural(s.rows, 'row')}`
}

export function renderSets(location: string, sets: BackupSetSummary[]): string {
  if (!sets.length) return `No backups in ${location} yet. Take one with "examforge-ops backup full".`
  const rows = sets.map((s) => [
    s.setId,
    s.status,
    s.snapshotTime ? formatTime(s.snapshotTime) : '—',
    contentsText(s),
    formatBytes(s.storedBytes),
    s.durationMs != null ? `${(s.durationMs / 1000).toFixed(1)} s` : '',
    [
      s.encrypted ? (s.authenticity === 'authenticated' ? 'encrypted, authenticated' : 'encrypted') : '',
      s.orphanedSafety ? 'orphaned safety backup (its restore failed; retention deletes it)' : '',
      s.problem ?? '',
    ]
      .filter(Boolean)
      .join('; '),
  ])
  const [head, ...lines] = columns([['set', 'status', 'taken', 'contents', 'size', 'took', 'notes'], ...rows], [4, 5])
  return [`Backups in ${location}:`, '', head, ...lines].join('\n')
}

export function renderMetrics(latest: LatestValue[], notConfigured: string[] = []): string {
  const value = (l: LatestValue) =>
    l.v === null
      ? `—  (${l.note ?? 'no value'})`
      : l.unit === 'bytes' || l.unit === 'bytes/s'
        ? `${formatBytes(l.v)}${l.unit === 'bytes/s' ? '/s' : ''}`
        : `${l.v} ${l.unit}`
  return [...latest.map((l) => `${l.id.padEnd(44)} ${value(l)}`), ...notConfigured].join('\n')
}
