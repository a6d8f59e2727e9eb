import { useState } from 'react'
import { formatBytes as bytes, localizeTimes } from '../../../../shared/format'
import type { RestorePlan } from '../../../../shared/restore'
import { fmtDuration, fmtNumber } from '../../components/format'
import { useRestore } from '../../stores/restore'
import { CopyId } from '../../components/CopyId'

export function ScopeStep({ plan }: { plan: RestorePlan }) {
  const { tables, setTables, setStep } = useRestore()
  const chosen = new Set(tables ?? [])
  const whole = tables === null
  // Tables that foreign keys tie to the chosen ones and are not chosen: offered, never added silently.
  const tied = new Map<string, string>()
  for (const a of plan.available)
    if (chosen.has(a.table)) {
      a.references.forEach((r) => !chosen.has(r) && tied.set(r, `${a.table} references it`))
      a.referencedBy.forEach((r) => !chosen.has(r) && tied.set(r, `it references ${a.table}`))
    }
  const toggle = (t: string) => {
    const next = new Set(chosen)
    if (next.has(t)) next.delete(t)
    else next.add(t)
    void setTables([...next])
  }
  return (
    <section className="card" data-testid="restore-scope">
      <h3>2. Choose what to restore</h3>
      <div className="choices">
        <label>
          <input type="radio" checked={whole} onChange={() => void setTables(null)} /> The whole database ({plan.available.length} tables)
        </label>
        <label>
          <input type="radio" checked={!whole} onChange={() => void setTables([])} data-testid="scope-chosen" /> Chosen tables
        </label>
      </div>
      {!whole && (
        <>
          <table className="settings scope-tables">
            <thead>
              <tr>
                <th />
                <th>Table</th>
                <th>Rows in the backup</th>
                <th>Foreign keys</th>
              </tr>
            </thead>
            <tbody>
              {plan.available.map((a) => (
                <tr key={a.table}>
                  <td>
                    <input
                      type="checkbox"
                      checked={chosen.has(a.table)}
                      onChange={() => toggle(a.table)}
                      aria-label={`Restore ${a.table}`}
                    />
                  </td>
                  <td>
                    <code>{a.table}</code>
                  </td>
                  <td>{fmtNumber(a.rows)}</td>
                  <td className="muted">
                    {a.references.length ? `→ ${a.references.join(', ')}` : ''}
                    {a.references.length && a.referencedBy.length ? ' · ' : ''}
                    {a.referencedBy.length ? `← ${a.referencedBy.join(', ')}` : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {tied.size > 0 && (
            <div className="note" data-testid="scope-related">
              Foreign keys tie the chosen tables to {tied.size} other table(s):{' '}
              {[...tied].map(([t, why]) => (
                <span key={t}>
                  <code>{t}</code> ({why}){' '}
                </span>
              ))}
              <button onClick={() => void setTables([...chosen, ...tied.keys()])} data-testid="scope-include-related">
                Include them
              </button>
              <div className="muted">
                Left out, their rows stay as they are now; the check after the restore reports any row that then points nowhere, and an
                in-place restore rolls back if one does.
              </div>
            </div>
          )}
        </>
      )}
      <div className="wizard-nav">
        <button onClick={() => setStep('point')}>Back</button>
        <button className="primary" disabled={!whole && chosen.size === 0} onClick={() => setStep('target')} data-testid="restore-next">
          Next: target
        </button>
      </div>
    </section>
  )
}

export function TargetStep({ database }: { database: string | null }) {
  const { target, setTarget, setStep } = useRestore()
  const [name, setName] = useState(target.kind === 'in-place' ? '' : target.database)
  const valid = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/.test(name)
  return (
    <section className="card" data-testid="restore-target">
      <h3>3. Choose where to restore</h3>
      <div className="choices column">
        <label>
          <input type="radio" checked={target.kind === 'in-place'} onChange={() => setTarget({ kind: 'in-place' })} /> In place: into{' '}
          <code>{database ?? 'the database'}</code>. Atomic: one transaction, after a safety backup of the tables it replaces (Undo restores
          it).
        </label>
        <label>
          <input type="radio" checked={target.kind === 'existing'} onChange={() => setTarget({ kind: 'existing', database: name })} />{' '}
          Another existing database on the same server
        </label>
        <label>
          <input
            type="radio"
            checked={target.kind === 'new'}
            onChange={() => setTarget({ kind: 'new', database: name })}
            data-testid="target-new"
          />{' '}
          A new database on the same server, created by the restore
        </label>
        {target.kind !== 'in-place' && (
          <input
            className="database-name"
            value={name}
            placeholder="database name, e.g. examforge_restored"
            aria-label="Target database name"
            data-testid="target-name"
            onChange={(e) => {
              setName(e.target.value)
              setTarget({ kind: target.kind, database: e.target.value })
            }}
          />
        )}
        {target.kind !== 'in-place' && name && !valid && (
          <span className="danger-text">Letters, digits, "_" and "-", starting with a letter or "_".</span>
        )}
      </div>
      <div className="wizard-nav">
        <button onClick={() => setStep('scope')}>Back</button>
        <button
          className="primary"
          disabled={target.kind !== 'in-place' && !valid}
          onClick={() => setStep('preview')}
          data-testid="restore-next"
        >
          Next: preview
        </button>
      </div>
    </section>
  )
}

export function PreviewStep() {
  const { plan, planning, planError, setStep } = useRestore()
  if (planning || (!plan && !planError)) return <section className="card">Planning: reading the backup and looking at the target…</section>
  if (!plan)
    return (
      <section className="card">
        <p className="danger-text">{planError}</p>
        <button onClick={() => setStep('target')}>Back</button>
      </section>
    )
  return (
    <section className="card" data-testid="restore-preview">
      <h3>4. Preview: nothing has been changed yet</h3>
      <table className="kv">
        <tbody>
          <tr>
            <th>point</th>
            <td data-testid="preview-point">{localizeTimes(plan.point.label)}</td>
          </tr>
          <tr>
            <th>reads</th>
            <td>
              {plan.sets.map((s) => `${s.type} ${s.setId}`).join(' → ')} · {bytes(plan.bytesToRead)}
              {plan.transactions ? ` · replays ${fmtNumber(plan.transactions)} transaction(s)` : ''}
            </td>
          </tr>
          <tr>
            <th>into</th>
            <td>
              <code>{plan.target.database}</code> on {plan.target.server}:{' '}
              {plan.target.mode === 'replace'
                ? 'the tables are replaced in one transaction (writers wait, readers see the old rows until it commits), after a safety backup of them'
                : `${plan.target.createsDatabase ? 'the database is created, then ' : ''}the schema first, then the data in parallel, then keys and indexes`}
            </td>
          </tr>
          <tr>
            <th>estimated time</th>
            <td data-testid="restore-estimate">
              {plan.estimatedSeconds === null ? 'unknown' : `about ${fmtDuration(plan.estimatedSeconds)}`}{' '}
              <span className="muted">({plan.estimateBasis})</span>
            </td>
          </tr>
        </tbody>
      </table>
      <h3>Preflight</h3>
      <ul className="preflight" data-testid="restore-preflight">
        {plan.preflight.map((c) => (
          <li key={c.check} className={`pf-${c.status}`}>
            <span className={`pill small status-${c.status === 'ok' ? 'healthy' : c.status === 'warning' ? 'degraded' : 'unhealthy'}`}>
              {c.status}
            </span>{' '}
            <b>{c.check}</b>: {c.detail}
          </li>
        ))}
      </ul>
      <h3>What changes</h3>
      <table className="settings" data-testid="restore-rows">
        <thead>
          <tr>
            <th>Table</th>
            <th className="num">Rows now</th>
            <th className="num">Rows after</th>
            <th className="num">Change</th>
          </tr>
        </thead>
        <tbody>
          {plan.tables.map((t) => {
            const d = t.rowsNow === null ? null : t.rowsAfter - t.rowsNow
            return (
              <tr key={t.table}>
                <td>
                  <code>{t.table}</code>
                </td>
                <td className="num">{t.rowsNow === null ? '—' : `${t.rowsNowExact ? '' : '≈ '}${fmtNumber(t.rowsNow)}`}</td>
                <td className="num">{fmtNumber(t.rowsAfter)}</td>
                <td className={`num ${d && d > 0 ? 'up' : d && d < 0 ? 'down' : 'muted'}`}>
                  {d === null ? '' : d === 0 ? 'same count' : `${d > 0 ? '+' : ''}${fmtNumber(d)}`}
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
      <div className="wizard-nav">
        <button onClick={() => setStep('target')}>Back</button>
        <button className="primary" disabled={!plan.ok} onClick={() => setStep('confirm')} data-testid="restore-next">
          {plan.ok ? 'Next: confirm' : 'Preflight failed: fix it first'}
        </button>
      </div>
    </section>
  )
}

export function ConfirmStep({ plan }: { plan: RestorePlan }) {
  const { start, setStep } = useRestore()
  const [typed, setTyped] = useState('')
  const [operator, setOperator] = useState('')
  return (
    <section className="card" data-testid="restore-confirm">
      <h3>5. Confirm</h3>
      <p>
        Restore <b>{localizeTimes(plan.point.label)}</b> into <code>{plan.target.database}</code>
        {plan.wholeDatabase ? ' (the whole database)' : ` (${plan.tables.length} table(s))`}.{' '}
        {plan.target.mode === 'replace'
          ? 'The current rows of these tables are saved in a safety backup first; if anything fails, nothing changes.'
          : 'Until it finishes, the database is marked incomplete.'}
      </p>
      <form
        className="edit column"
        onSubmit={(e) => {
          e.preventDefault()
          void start(typed, operator.trim())
        }}
      >
        <label className="field">
          <span>Note for the audit log: your name or e-mail, why (optional)</span>
          <input
            value={operator}
            onChange={(e) => setOperator(e.target.value)}
            placeholder="e.g. ana@examforge.io, restoring after the bad migration"
            aria-label="Note for the audit log"
            data-testid="restore-operator"
          />
        </label>
        <label className="field">
          <span>Type the database name to confirm</span>
          <input
            value={typed}
            onChange={(e) => setTyped(e.target.value)}
            placeholder={`type ${plan.target.database} to confirm`}
            aria-label="Database name to confirm"
            data-testid="restore-confirm-name"
          />
        </label>
        <div className="wizard-nav">
          <button type="button" onClick={() => setStep('preview')}>
            Back
          </button>
          <button className="danger" type="submit" disabled={typed !== plan.target.database} data-testid="restore-start">
            Restore {plan.target.database}
          </button>
        </div>
      </form>
    </section>
  )
}

export function RunningStep() {
  const { running, progress, cancel } = useRestore()
  if (!running) return null
  const elapsed = (Date.now() - running.startedAt) / 1000
  const rate = progress && progress.unit === 'bytes' && elapsed > 0 ? progress.done / elapsed : null
  return (
    <section className="card job" data-testid="restore-progress">
      <div>
        <b>{running.kind === 'undo' ? 'Undoing the restore' : running.kind === 'test' ? 'Restore test' : 'Restoring'}</b>{' '}
        <span className="muted">
          job <CopyId id={running.jobId} what="job id" testId="restore-job-id" />
        </span>
        <div className="muted">
          {progress?.phase ?? 'starting'}
          {progress?.message ? ` · ${progress.message}` : ''}
          {progress?.total && progress.unit === 'bytes' ? ` · ${bytes(progress.done)} of ${bytes(progress.total)}` : ''}
          {progress?.total && progress.unit !== 'bytes' ? ` · ${fmtNumber(progress.done)} of ${fmtNumber(progress.total)}` : ''}
          {rate ? ` · ${bytes(rate)}/s` : ''} · ETA {fmtDuration(progress?.etaS ?? null)}
        </div>
      </div>
      <progress max={progress?.total ?? 1} value={progress?.total ? Math.min(progress.done, progress.total) : undefined} />
      <button onClick={() => void cancel()} data-testid="restore-cancel">
        Cancel
      </button>
    </section>
  )
}
