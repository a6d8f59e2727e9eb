import { useState } from 'react'
import { formatBytes as bytes, localizeTimes } from '../../../../shared/format'
import { fkChecked, foreignKeyCounts, type CheckReport, type RestoreRecord } from '../../../../shared/restore'
import { ago, fmtDuration, fmtNumber } from '../../components/format'
import { useApp } from '../../stores/app'
import { useRestore } from '../../stores/restore'
import { Time } from '../../components/Time'
import { CopyId } from '../../components/CopyId'

/** Save JSON as a file from the page (the report holds no secrets: target as db@host, no credentials). */
function download(name: string, data: unknown) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }))
  const a = document.createElement('a')
  a.href = url
  a.download = name
  a.click()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

/** Foreign keys counted by what was done with them: a key that could not be checked is not said to hold. */
function ForeignKeys({ report }: { report: CheckReport }) {
  const n = foreignKeyCounts(report)
  const broken = report.foreignKeys.filter((f) => fkChecked(f) && !f.ok)
  const skipped = report.foreignKeys.filter((f) => !fkChecked(f))
  return (
    <>
      Foreign keys: {n.checked === 0 ? 'none checked' : `${n.hold} of ${n.checked} checked hold`}
      {broken.map((f) => (
        <span key={f.constraint} className="danger-text">
          {' '}
          {f.constraint}: {f.note}.
        </span>
      ))}
      {skipped.length > 0 ? `; ${skipped.length} not checked:` : '.'}
      {skipped.map((f, i) => (
        <span key={f.constraint}>
          {' '}
          {f.constraint} ({f.note?.replace(/^not checked: /, '')}){i === skipped.length - 1 ? '.' : ';'}
        </span>
      ))}
    </>
  )
}

export function CheckTable({ report }: { report: CheckReport }) {
  return (
    <>
      <table className="settings" data-testid="check-tables">
        <thead>
          <tr>
            <th>Table</th>
            <th className="num">Rows expected</th>
            <th className="num">Rows found</th>
            <th>Digest</th>
            <th>Result</th>
          </tr>
        </thead>
        <tbody>
          {report.tables.map((t) => (
            <tr key={t.table}>
              <td>
                <code>{t.table}</code>
              </td>
              <td className="num">{fmtNumber(t.rowsExpected)}</td>
              <td className="num">{fmtNumber(t.rowsFound)}</td>
              <td className="muted">
                {t.digestExpected
                  ? t.digestExpected === t.digestFound
                    ? 'matches the backup'
                    : 'differs'
                  : (report.countOnly ?? 'count only (no row digest for this point)')}
              </td>
              <td>{t.ok ? <span className="ok">ok</span> : <span className="danger-text">{t.problem}</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted" data-testid="check-relations">
        <ForeignKeys report={report} /> Sequences: {report.sequences.filter((s) => s.ok).length} of {report.sequences.length} at or above
        the values in use.
      </p>
    </>
  )
}

export function ResultStep() {
  const { finished, shown, undo, reset, history } = useRestore()
  const [typed, setTyped] = useState('')
  const [operator, setOperator] = useState('')
  const [undoing, setUndoing] = useState(false)
  if (!finished) return null
  const job = finished.job
  const database = shown?.target.split('@')[0] ?? ''
  // An undo already done is not offered again (the history knows which undo put the safety backup back).
  const undoneBy = history.find((h) => h.id === shown?.restoreId)?.undoneBy ?? null
  const canUndo = !!shown?.safetySetId && !undoneBy
  return (
    <section className="card" data-testid="restore-result">
      <h3>
        {job.state === 'succeeded'
          ? `${finished.kind === 'undo' ? 'Undo' : 'Restore'} done: check ${shown?.report.ok ? 'passed' : 'FAILED'}`
          : `${finished.kind === 'undo' ? 'Undo' : 'Restore'} ${job.state}`}
      </h3>
      {job.error && (
        <p className="danger-text" data-testid="restore-error">
          {job.error.message}
        </p>
      )}
      {shown && (
        <>
          <p>
            {/* The rows the sets loaded; replayed changes then add and remove rows (the check below counts the result). */}
            {fmtNumber(shown.rows)} rows ({bytes(shown.bytes)}) loaded into <code>{shown.target}</code>
            {shown.transactions ? `, then ${fmtNumber(shown.transactions)} transaction(s) of changes replayed on them,` : ''} in{' '}
            {fmtDuration(shown.durationMs / 1000)}.
            {shown.safetySetId ? (
              <>
                {' '}
                The rows it replaced are in the safety backup <code>{shown.safetySetId}</code>.
                {undoneBy ? ` It was undone by ${undoneBy}.` : ''}
              </>
            ) : null}
          </p>
          <p className="ids" data-testid="restore-ids">
            Restore id <CopyId id={shown.restoreId} what="restore id" testId="restore-id" />
            {canUndo ? (
              <span className="muted">
                {' '}
                · undo from a shell: <code>examforge-ops restore --undo {shown.restoreId}</code>
              </span>
            ) : null}
            {shown.safetySetId ? (
              <>
                {' '}
                · safety backup <CopyId id={shown.safetySetId} what="safety backup set id" />
              </>
            ) : null}{' '}
            · job <CopyId id={job.id} what="job id" />
          </p>
          <CheckTable report={shown.report} />
          <div className="wizard-nav">
            <button onClick={() => download(`restore-${shown.restoreId}.json`, shown)} data-testid="restore-export">
              Download the report (JSON)
            </button>
            {canUndo && !undoing && (
              <button onClick={() => setUndoing(true)} data-testid="restore-undo">
                Undo…
              </button>
            )}
            <button onClick={reset}>New restore</button>
          </div>
          {canUndo && undoing && (
            <form
              className="edit column"
              onSubmit={(e) => {
                e.preventDefault()
                void undo(typed, operator.trim())
              }}
            >
              <p>
                Undo restores the safety backup <code>{shown.safetySetId}</code>: the tables go back to what they held just before this
                restore, and <strong>rows written to them since are replaced</strong>. A safety backup of the tables as they are now is
                taken first, so what is replaced can still be got back.
              </p>
              <label className="field">
                <span>Note for the audit log: your name or e-mail, why (optional)</span>
                <input
                  value={operator}
                  onChange={(e) => setOperator(e.target.value)}
                  placeholder="e.g. ana@examforge.io, restoring after the bad migration"
                  aria-label="Note for the audit log"
                />
              </label>
              <label className="field">
                <span>Type the database name to confirm</span>
                <input
                  value={typed}
                  onChange={(e) => setTyped(e.target.value)}
                  placeholder={`type ${database} to confirm`}
                  aria-label="Database name to confirm undo"
                  data-testid="undo-confirm-name"
                />
              </label>
              <div className="wizard-nav">
                <button type="button" onClick={() => setUndoing(false)}>
                  Keep the restore
                </button>
                <button className="danger" type="submit" disabled={typed !== database} data-testid="undo-start">
                  Undo the restore
                </button>
              </div>
            </form>
          )}
        </>
      )}
      {!shown && (
        <div className="wizard-nav">
          <button onClick={reset}>Start again</button>
        </div>
      )}
    </section>
  )
}

/** One click drops what a stopped restore created and could not drop itself (only while it is marked incomplete). */
function DropLeftover({ h }: { h: RestoreRecord }) {
  const api = useApp((s) => s.api)
  const load = useRestore((s) => s.load)
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null)
  if (!h.leftover && !note) return null
  return (
    <div data-testid="restore-leftover">
      {h.leftover && (
        <>
          <span className="danger-text">The database {h.leftover} it created is still there, incomplete.</span>{' '}
          <button
            className="danger"
            onClick={() =>
              void api!.call('restore.dropIncomplete', { restoreId: h.id, confirm: h.leftover! }).then(
                (r) => {
                  setNote({ ok: true, text: `Dropped ${r.dropped}.` })
                  void load()
                },
                (e: Error) => setNote({ ok: false, text: e.message }),
              )
            }
          >
            Drop {h.leftover}
          </button>
        </>
      )}
      {note && <div className={note.ok ? 'ok' : 'danger-text'}>{note.text}</div>}
    </div>
  )
}

export function History({ history }: { history: RestoreRecord[] }) {
  const { runTest, running, finished } = useRestore()
  const api = useApp((s) => s.api)
  const lastTest = history.find((h) => h.kind === 'restore-test')
  return (
    <section className="card" data-testid="restore-history">
      <h3>Restore tests and history</h3>
      <p>
        A restore test restores the newest chain into a scratch database, checks it and drops it; the set is then shown as proven restorable
        on the Backups page. The agent runs it on RESTORE_TEST_EVERY (e.g. 7d).{' '}
        {lastTest ? (
          <>
            Last test: <b className={lastTest.outcome === 'succeeded' ? 'ok' : 'danger-text'}>{lastTest.outcome}</b>{' '}
            {ago(lastTest.startedAt)}.
          </>
        ) : (
          'No restore test yet.'
        )}{' '}
        <button onClick={() => void runTest()} disabled={!!running} data-testid="restore-test">
          Run a restore test now
        </button>
      </p>
      {finished?.kind === 'test' && (
        <p className={finished.job.state === 'succeeded' ? 'ok' : 'danger-text'} data-testid="restore-test-outcome">
          Restore test {finished.job.state}
          {finished.job.error ? `: ${finished.job.error.message}` : ': the backup restored and every check passed.'}
        </p>
      )}
      <table className="settings" data-testid="restore-history-table">
        <thead>
          <tr>
            <th>When</th>
            <th>What</th>
            <th>Who</th>
            <th>Into</th>
            <th>Outcome</th>
            <th>Id</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {history.length === 0 && (
            <tr>
              <td colSpan={7} className="muted">
                No restores yet.
              </td>
            </tr>
          )}
          {history.map((h) => (
            <tr key={h.id}>
              <td>
                <Time at={h.startedAt} />
              </td>
              <td>
                {h.kind} · {localizeTimes(h.point)}
                {h.tables.length ? <div className="muted">{h.tables.length} table(s)</div> : null}
              </td>
              <td>{h.actor}</td>
              <td className="wrap-anywhere">
                <code>{h.target}</code>
              </td>
              <td>
                <span
                  className={`pill small status-${h.outcome === 'succeeded' ? 'healthy' : h.outcome === 'running' ? 'degraded' : 'unhealthy'}`}
                >
                  {h.outcome}
                </span>
                {h.durationMs !== null ? <span className="muted"> {fmtDuration(h.durationMs / 1000)}</span> : null}
                {h.error ? <div className="muted">{h.error}</div> : null}
                <DropLeftover h={h} />
                {h.undoneBy ? (
                  <div className="muted" data-testid="restore-undone">
                    undone by {h.undoneBy}
                  </div>
                ) : null}
              </td>
              <td>
                <CopyId id={h.id} what="restore id" testId="history-restore-id" />
              </td>
              <td>
                <button
                  className="link"
                  onClick={() => void api?.call('restore.get', { restoreId: h.id }).then((r) => download(`restore-${h.id}.json`, r))}
                  aria-label={`Download the report of ${h.id}`}
                >
                  report
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
