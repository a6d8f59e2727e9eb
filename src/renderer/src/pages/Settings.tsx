import { useEffect, useState } from 'react'
import { fmtDuration, fmtNumber } from '../components/format'
import type { SettingView } from '../../../shared/domain'
import { useApp } from '../stores/app'

function SettingRow({ s }: { s: SettingView }) {
  const saveSetting = useApp((st) => st.saveSetting)
  const [editing, setEditing] = useState(false)
  const [value, setValue] = useState('')
  const [note, setNote] = useState<string | null>(null)
  const save = async (v: string | null) => {
    const msg = await saveSetting(s.key, v)
    if (msg) {
      setNote(msg)
      setEditing(false)
      setValue('')
    }
  }
  return (
    <tr data-testid={`setting-${s.key}`}>
      <td>
        <code>{s.key}</code>
        <div className="muted">{s.label}</div>
      </td>
      <td className="value">
        {editing ? (
          <form
            className="edit"
            onSubmit={(e) => {
              e.preventDefault()
              void save(value)
            }}
          >
            <input
              autoFocus
              type={s.secret ? 'password' : 'text'}
              value={value}
              placeholder={s.secret ? 'new secret (never shown again)' : (s.value ?? '')}
              onChange={(e) => setValue(e.target.value)}
              aria-label={`New value for ${s.key}`}
            />
            <button className="primary" type="submit" disabled={!value}>
              Save
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          (s.value ?? <span className="muted">not set</span>)
        )}
        {s.pending !== null && <div className="note">Saved: {s.pending} (applies after a restart)</div>}
        {note && s.pending === null && <div className="note">{note}</div>}
      </td>
      <td>{s.source}</td>
      <td className="actions">
        {!editing && (
          <button className="link" onClick={() => setEditing(true)}>
            Edit
          </button>
        )}
        {!editing && (s.source === 'settings file' || s.source === 'secret store') && (
          <button className="link" onClick={() => void save(null)}>
            Clear
          </button>
        )}
      </td>
    </tr>
  )
}

export function Settings() {
  const { settings, loadSettings, info, seed, jobs, cancelJob, lastJob } = useApp()
  const [scale, setScale] = useState('1')
  useEffect(() => void loadSettings(), [loadSettings])
  const running = Object.values(jobs)
  return (
    <>
      <section>
        <h2>Configuration</h2>
        <p className="muted">
          Values come from the environment, the secret store or the settings file. Secrets are never shown: only their shape. Change them in
          the environment (or the 0600 file named by OPS_SECRETS_FILE) and restart the console.
        </p>
        <table className="settings" data-testid="settings">
          <thead>
            <tr>
              <th>Setting</th>
              <th>Value</th>
              <th>From</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {settings?.map((s) => (
              <SettingRow key={s.key} s={s} />
            ))}
          </tbody>
        </table>
      </section>
      {info?.sandbox.active && (
        <section>
          <h2>Sandbox data</h2>
          <p className="muted">
            Regenerate the sandbox database. 1 ≈ 10 MB; 200 ≈ 2 GB (for benchmarks). The current data stays until the new data is complete.
          </p>
          <div className="toolbar">
            <label>
              Scale <input type="number" min="0.01" max="1000" step="any" value={scale} onChange={(e) => setScale(e.target.value)} />
            </label>
            <button onClick={() => void seed(Number(scale))} disabled={running.length > 0 || !(Number(scale) > 0)}>
              Regenerate sandbox data
            </button>
          </div>
          {running.map((p) => (
            <div key={p.jobId} className="job" data-testid="job-progress">
              <div>
                {p.phase}: {fmtNumber(p.done)}
                {p.total ? ` of ${fmtNumber(p.total)}` : ''} {p.unit} · ETA {fmtDuration(p.etaS)}
              </div>
              <progress max={p.total ?? 1} value={p.total ? p.done : undefined} />
              <button onClick={() => void cancelJob(p.jobId)}>Cancel</button>
            </div>
          ))}
          {lastJob && running.length === 0 && (
            <p className={lastJob.state === 'succeeded' ? 'ok' : 'muted'} data-testid="job-outcome">
              Last job {lastJob.kind}: {lastJob.state}
              {lastJob.error ? ` — ${lastJob.error.message}` : ''}
            </p>
          )}
        </section>
      )}
    </>
  )
}
