import { useEffect } from 'react'
import { fmtDuration, fmtNumber } from '../components/format'
import { useBackups } from '../stores/backups'

export function bytes(n: number): string {
  const u = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024
    i++
  }
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${u[i]}`
}

function Progress() {
  const { running, progress, cancel } = useBackups()
  if (!running) return null
  const elapsed = (Date.now() - running.startedAt) / 1000
  const rate = progress && elapsed > 0 && progress.unit === 'bytes' ? progress.done / elapsed : null
  return (
    <div className="job" data-testid="backup-progress">
      <div>
        <b>{running.kind === 'backup' ? `Backing up (${running.setId})` : `Verifying ${running.setId}`}</b>
        <div className="muted">
          {progress?.phase ?? 'starting'}
          {progress?.message ? ` · ${progress.message}` : ''}
          {progress?.total ? ` · ${bytes(progress.done)} of ~${bytes(progress.total)}` : ''}
          {rate ? ` · ${bytes(rate)}/s` : ''} · ETA {fmtDuration(progress?.etaS ?? null)}
        </div>
      </div>
      <progress max={progress?.total ?? 1} value={progress?.total ? Math.min(progress.done, progress.total) : undefined} />
      <button onClick={() => void cancel()}>Cancel</button>
    </div>
  )
}

export function Backups() {
  const { location, sets, selected, running, outcome, report, load, open, backupNow, verify } = useBackups()
  useEffect(() => void load(), [load])
  return (
    <>
      <div className="toolbar">
        <button className="primary" onClick={() => void backupNow('full')} disabled={!!running} data-testid="backup-now">
          Back up now (full)
        </button>
        <button onClick={() => void backupNow('incremental')} disabled={!!running} data-testid="backup-incremental">
          Incremental
        </button>
        <span className="muted">
          Stored in <code>{location ?? '…'}</code>. The list is read from the backups' manifests, so it works while the database is down.
        </span>
      </div>
      <Progress />
      {outcome && (
        <p className={outcome.job.state === 'succeeded' ? 'ok' : 'danger-text'} data-testid="backup-outcome">
          {outcome.kind === 'backup' ? 'Backup' : 'Verify'} {outcome.job.state}
          {outcome.job.error ? `: ${outcome.job.error.message}` : ''}
          {outcome.kind === 'verify' && report
            ? report.ok
              ? ` — all ${report.objects.length} objects are intact.`
              : ` — ${report.objects.filter((o) => !o.ok).length} bad objects.`
            : ''}
        </p>
      )}
      {report && !report.ok && (
        <ul className="bad-objects" data-testid="verify-problems">
          {report.objects
            .filter((o) => !o.ok)
            .map((o) => (
              <li key={o.key}>
                <code>{o.key}</code>: {o.problem}
              </li>
            ))}
        </ul>
      )}
      <div className="split">
        <table className="settings sets" data-testid="backup-sets">
          <thead>
            <tr>
              <th>Set</th>
              <th>Snapshot</th>
              <th>Tables</th>
              <th>Rows</th>
              <th>Size</th>
              <th>Took</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {sets?.length === 0 && (
              <tr>
                <td colSpan={7} className="muted">
                  No backups yet. "Back up now" takes a consistent full backup of every table.
                </td>
              </tr>
            )}
            {sets?.map((s) => (
              <tr
                key={s.setId}
                className={selected?.set.setId === s.setId ? 'selected-row' : ''}
                onClick={() => void open(s.setId)}
                data-testid="backup-set"
              >
                <td>
                  <code>{s.setId}</code>
                  <div className="muted">
                    {s.type}
                    {s.encrypted ? ' · encrypted' : ''}
                    {s.compression ? ` · ${s.compression}` : ''}
                  </div>
                </td>
                <td>{s.snapshotTime ? new Date(s.snapshotTime).toLocaleString() : '—'}</td>
                <td>{s.tables}</td>
                <td>{fmtNumber(s.rows)}</td>
                <td>{bytes(s.storedBytes)}</td>
                <td>{s.durationMs != null ? fmtDuration(s.durationMs / 1000) : '—'}</td>
                <td>
                  <span className={`pill small status-${s.status === 'complete' ? 'healthy' : 'unhealthy'}`}>{s.status}</span>
                  {s.problem && <div className="muted">{s.problem}</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {selected && (
          <aside className="details" data-testid="set-details">
            <div className="details-head">
              <h2>{selected.set.setId}</h2>
              <button className="link" onClick={() => void open(null)} aria-label="Close details">
                ✕
              </button>
            </div>
            <table className="kv">
              <tbody>
                <tr>
                  <th>server</th>
                  <td>{selected.server ?? '—'}</td>
                </tr>
                <tr>
                  <th>snapshot LSN</th>
                  <td>{selected.snapshotLsn ?? '—'}</td>
                </tr>
                <tr>
                  <th>table data</th>
                  <td>
                    {bytes(selected.set.rawBytes)} → {bytes(selected.set.storedBytes)} stored
                  </td>
                </tr>
                <tr>
                  <th>objects</th>
                  <td>{selected.set.objects}</td>
                </tr>
              </tbody>
            </table>
            {selected.set.status === 'complete' && (
              <button onClick={() => void verify(selected.set.setId)} disabled={!!running} data-testid="verify">
                Verify every object
              </button>
            )}
            <h3>Tables</h3>
            <table className="kv">
              <tbody>
                {selected.tables.map((t) => (
                  <tr key={`${t.schema}.${t.name}`}>
                    <th>
                      {t.schema}.{t.name}
                    </th>
                    <td>
                      {fmtNumber(t.rows)} rows · {bytes(t.storedBytes)}
                      {t.chunks > 1 ? ` · ${t.chunks} chunks` : ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </aside>
        )}
      </div>
      <div className="card coming-card">
        <h3>
          Incremental backups, retention and schedules <span className="badge">coming</span>
        </h3>
        <p>
          Change-stream incrementals from a logical replication slot, retention with a preview, and scheduled backups in the agent are the
          next steps.
        </p>
      </div>
    </>
  )
}
