import { statusRank, type BackupSetSummary, type HealthResult, type HealthSnapshot } from '../shared/domain'
import type { LatestValue } from '../shared/metrics'
import { formatBytes } from '../core/health/probe'
import { transportText } from '../shared/format'
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

export function renderSets(location: string, sets: BackupSetSummary[]): string {
  if (!sets.length) return `No backups in ${location} yet. Take one with "examforge-ops backup full".`
  const lines = sets.map((s) =>
    [
      s.setId.padEnd(32),
      s.status.padEnd(10),
      (s.snapshotTime ?? '—').slice(0, 19).replace('T', ' ').padEnd(19),
      `${s.tables} tables`.padStart(10),
      `${s.rows.toLocaleString('en-US')} rows`.padStart(16),
      formatBytes(s.storedBytes).padStart(9),
      s.durationMs != null ? `${(s.durationMs / 1000).toFixed(1)} s`.padStart(8) : ''.padStart(8),
      s.encrypted ? (s.authenticity === 'authenticated' ? 'encrypted, authenticated' : 'encrypted') : '',
      s.orphanedSafety ? 'orphaned safety backup (its restore failed; retention deletes it)' : '',
      s.problem ?? '',
    ].join('  '),
  )
  return [`Backups in ${location}:`, ...lines].join('\n')
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
