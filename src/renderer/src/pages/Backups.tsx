import { useEffect, useState } from 'react'
import { formatBytes as bytes } from '../../../shared/format'
import { ago, fmtDuration, fmtNumber } from '../components/format'
import { useApp } from '../stores/app'
import { useBackups } from '../stores/backups'
import { useRestore } from '../stores/restore'
import { Time } from '../components/Time'
import { formatTime } from '../../../shared/format'
import { CopyId } from '../components/CopyId'

function Progress() {
  const { running, progress, cancel } = useBackups()
  if (!running) return null
  const elapsed = (Date.now() - running.startedAt) / 1000
  const rate = progress && elapsed > 0 && progress.unit === 'bytes' ? progress.done / elapsed : null
  return (
    <div className="job" data-testid="backup-progress">
      <div>
        <b>{running.kind === 'backup' ? `Backing up (${running.setId})` : `Verifying ${running.setId}`}</b>{' '}
        <span className="muted">
          job <CopyId id={running.jobId} what="job id" testId="backup-job-id" />
        </span>
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

function Incrementals() {
  const { prerequisites: p, dropSlot } = useBackups()
  const [dropping, setDropping] = useState<string | null>(null)
  const [typed, setTyped] = useState('')
  if (!p) return null
  return (
    <section className="card" data-testid="incrementals">
      <h3>Incremental backups</h3>
      {p.ok ? (
        <p className="ok">Ready: wal_level=logical, replication privilege, publication {p.publication}.</p>
      ) : (
        <>
          <p>Not possible yet (full backups work meanwhile):</p>
          <ul data-testid="prerequisite-problems">
            {p.problems.map((x) => (
              <li key={x}>{x}</li>
            ))}
          </ul>
          {p.tablesWithoutReplicaIdentity.length > 0 && (
            <pre className="fix">{p.tablesWithoutReplicaIdentity.map((t) => t.fix).join('\n')}</pre>
          )}
        </>
      )}
      {p.notes.map((n) => (
        <p key={n} className="note" data-testid="prerequisite-note">
          {n}
        </p>
      ))}
      {p.slots.map((s) => (
        <div key={s.name} className="slot">
          <code>{s.name}</code> holds <b>{bytes(s.retainedBytes)}</b> of WAL ({s.walStatus}
          {s.active ? ', in use' : ''}).{' '}
          {s.orphan && <b data-testid="orphan-slot">Used by no backup chain (a backup that did not finish left it): drop it. </b>}
          {dropping === s.name ? (
            <form
              className="edit inline"
              onSubmit={(e) => {
                e.preventDefault()
                void dropSlot(s.name, typed).then((ok) => ok && setDropping(null))
              }}
            >
              <input
                value={typed}
                onChange={(e) => setTyped(e.target.value)}
                placeholder={`type ${s.name}`}
                aria-label="Slot name to confirm"
              />
              <button className="danger" type="submit" disabled={typed !== s.name}>
                Drop slot
              </button>
              <button type="button" onClick={() => setDropping(null)}>
                Cancel
              </button>
            </form>
          ) : (
            <button
              className="link"
              onClick={() => {
                setDropping(s.name)
                setTyped('')
              }}
            >
              Drop…
            </button>
          )}
          {dropping === s.name && (
            <div className="muted">Dropping ends this chain: the next backup will be a full one. Sets already taken stay restorable.</div>
          )}
        </div>
      ))}
    </section>
  )
}

function Retention() {
  const { retention, previewRetention, prune } = useBackups()
  const [typed, setTyped] = useState('')
  return (
    <section className="card" data-testid="retention">
      <h3>Retention</h3>
      <p className="muted">
        Keeps backups younger than BACKUP_RETAIN_DAYS and the newest BACKUP_KEEP_FULLS full backups with their incrementals; a set that a
        kept set depends on is never deleted. The agent applies it after each scheduled full backup (BACKUP_FULL_EVERY,
        BACKUP_INCREMENTAL_EVERY).
      </p>
      <button onClick={() => void previewRetention()} data-testid="retention-preview">
        Preview what retention would delete
      </button>
      {retention && (
        <div className="retention-plan">
          <p>
            Policy: {retention.policy.retainDays} days, newest {retention.policy.keepFulls} full chain(s).{' '}
            {retention.delete.length
              ? `${retention.delete.length} set(s) would go, freeing ${bytes(retention.bytesFreed)}:`
              : 'Nothing to delete.'}
          </p>
          {retention.delete.length > 0 && (
            <>
              <ul data-testid="retention-delete">
                {retention.delete.map((d) => (
                  <li key={d.setId}>
                    <code>{d.setId}</code> · {bytes(d.bytes)} · {d.reason}
                  </li>
                ))}
              </ul>
              <form
                className="edit"
                onSubmit={(e) => {
                  e.preventDefault()
                  void prune(typed).then(() => setTyped(''))
                }}
              >
                <input
                  value={typed}
                  onChange={(e) => setTyped(e.target.value)}
                  placeholder='type "delete"'
                  aria-label="Type delete to confirm"
                />
                <button className="danger" type="submit" disabled={typed !== 'delete'} data-testid="retention-apply">
                  Delete {retention.delete.length} set(s)
                </button>
              </form>
            </>
          )}
        </div>
      )}
    </section>
  )
}

export function Backups() {
  const { location, sets, selected, running, outcome, report, load, open, backupNow, verify } = useBackups()
  const [hideSafety, setHideSafety] = useState(false)
  useEffect(() => void load(), [load])
  const safetyCount = sets?.filter((s) => s.type === 'safety').length ?? 0
  const shownSets = hideSafety ? sets?.filter((s) => s.type !== 'safety') : sets
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
          {outcome.kind === 'backup' && (outcome.job.result as { type?: string; note?: string | null } | undefined)?.type
            ? ` (${(outcome.job.result as { type: string }).type}). ${(outcome.job.result as { note?: string | null }).note ?? ''}`
            : ''}
          {outcome.kind === 'verify' && report
            ? report.ok
              ? ` — all ${report.objects.length} stored objects of ${report.setId} (the manifest included) are intact.`
              : ` — ${report.objects.filter((o) => !o.ok).length} of ${report.objects.length} stored objects of ${report.setId} are bad.`
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
      {safetyCount > 0 && (
        <label className="check-label" data-testid="hide-safety">
          <input type="checkbox" checked={hideSafety} onChange={(e) => setHideSafety(e.target.checked)} />
          Hide safety backups ({safetyCount}): the copies an in-place restore takes first, for its undo
        </label>
      )}
      <div className="split">
        <div className="table-scroll">
          <table className="settings sets" data-testid="backup-sets">
            <thead>
              <tr>
                <th>Set</th>
                <th>Snapshot</th>
                <th>Tables</th>
                <th>Rows / changes</th>
                <th>Size</th>
                <th>Took</th>
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {shownSets?.length === 0 && (
                <tr>
                  <td colSpan={7} className="muted">
                    {sets?.length
                      ? 'Only safety backups so far: untick "Hide safety backups" to see them.'
                      : 'No backups yet. "Back up now" takes a consistent full backup of every table.'}
                  </td>
                </tr>
              )}
              {shownSets?.map((s) => (
                <tr
                  key={s.setId}
                  className={`${selected?.set.setId === s.setId ? 'selected-row' : ''}${s.type === 'safety' ? ' safety-row' : ''}`}
                  onClick={() => void open(s.setId)}
                  data-testid="backup-set"
                  data-type={s.type}
                >
                  <td className={s.type === 'incremental' ? 'incremental' : ''}>
                    <CopyId id={s.setId} what="set id" />
                    <div className="muted">
                      {s.type === 'safety' ? (
                        <span
                          className="pill small status-degraded"
                          data-testid="safety-mark"
                          title="Taken by an in-place restore just before it replaced tables; Undo puts it back"
                        >
                          safety backup
                        </span>
                      ) : s.type === 'incremental' ? (
                        '↳ incremental'
                      ) : (
                        s.type
                      )}
                      {s.encrypted ? (s.authenticity === 'authenticated' ? ' · encrypted, authenticated' : ' · encrypted') : ''}
                      {s.compression ? ` · ${s.compression}` : ''}
                    </div>
                  </td>
                  <td>
                    <Time at={s.snapshotTime} />
                  </td>
                  <td>{s.type === 'incremental' ? '—' : s.tables}</td>
                  <td>
                    {s.changes
                      ? `${fmtNumber(s.changes.inserts + s.changes.updates + s.changes.deletes)} changes in ${fmtNumber(s.changes.transactions)} tx`
                      : fmtNumber(s.rows)}
                  </td>
                  <td>
                    {bytes(s.storedBytes)}
                    {s.partialBytes > 0 && <div className="muted">{bytes(s.partialBytes)} unfinished</div>}
                  </td>
                  <td>{s.durationMs != null ? fmtDuration(s.durationMs / 1000) : '—'}</td>
                  <td>
                    <span className={`pill small status-${s.status === 'complete' ? 'healthy' : 'unhealthy'}`}>{s.status}</span>
                    {s.problem && <div className="muted">{s.problem}</div>}
                    {s.orphanedSafety && (
                      <div className="muted" data-testid="orphaned-safety">
                        orphaned safety backup: its restore failed or was cancelled, so the database was left as it was. Not offered for
                        undo; retention deletes it.
                      </div>
                    )}
                    {s.provenAt && (
                      <div className="ok" data-testid="proven" title={formatTime(s.provenAt)}>
                        proven restorable {ago(s.provenAt)}
                      </div>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {selected && (
          <aside className="details" data-testid="set-details">
            <div className="details-head">
              <h2>
                <CopyId id={selected.set.setId} what="set id" testId="details-set-id" />
              </h2>
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
                {selected.set.changes ? (
                  <>
                    <tr>
                      <th>changes</th>
                      <td data-testid="details-changes">
                        {fmtNumber(selected.set.changes.transactions)} transaction(s): {fmtNumber(selected.set.changes.inserts)} inserted,{' '}
                        {fmtNumber(selected.set.changes.updates)} updated, {fmtNumber(selected.set.changes.deletes)} deleted
                        {selected.set.changes.truncates ? `, ${fmtNumber(selected.set.changes.truncates)} truncate(s)` : ''}
                      </td>
                    </tr>
                    {selected.changes?.firstCommitTime && (
                      <tr>
                        <th>committed</th>
                        <td>
                          <Time at={selected.changes.firstCommitTime} seconds /> to <Time at={selected.changes.lastCommitTime} seconds />
                        </td>
                      </tr>
                    )}
                    <tr>
                      <th>change stream</th>
                      <td>{bytes(selected.set.storedBytes)} stored</td>
                    </tr>
                  </>
                ) : (
                  <tr>
                    <th>table data</th>
                    <td>
                      {bytes(selected.set.rawBytes)} → {bytes(selected.set.storedBytes)} stored
                    </td>
                  </tr>
                )}
                <tr>
                  <th>stored objects</th>
                  <td data-testid="details-objects">
                    {selected.set.objects} ({selected.set.changes ? 'the change stream' : 'data, schema'} and the manifest)
                  </td>
                </tr>
              </tbody>
            </table>
            {selected.set.status === 'complete' && (
              <div className="wizard-nav">
                <button onClick={() => void verify(selected.set.setId)} disabled={!!running} data-testid="verify">
                  Verify every object
                </button>
                <button
                  onClick={() => {
                    useRestore.getState().reset()
                    void useRestore.getState().choosePoint({ setId: selected.set.setId })
                    useApp.getState().go('restore')
                  }}
                  data-testid="restore-this"
                >
                  Restore…
                </button>
              </div>
            )}
            {selected.changes && (
              <>
                <h3>Tables changed ({selected.changes.tables.length})</h3>
                <ul className="plain" data-testid="details-changed-tables">
                  {selected.changes.tables.length === 0 && <li className="muted">No table changed in this interval.</li>}
                  {selected.changes.tables.map((t) => (
                    <li key={t}>
                      <code>{t}</code>
                    </li>
                  ))}
                </ul>
              </>
            )}
            {selected.tables.length > 0 && <h3>Tables ({selected.tables.length})</h3>}
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
      <Incrementals />
      <Retention />
    </>
  )
}
