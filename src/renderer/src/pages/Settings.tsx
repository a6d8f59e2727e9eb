import { useEffect, useState } from 'react'
import { fmtDuration, fmtNumber } from '../components/format'
import type { SettingView } from '../../../shared/domain'
import { useApp } from '../stores/app'
import { CopyId } from '../components/CopyId'

function SettingRow({ s }: { s: SettingView }) {
  const saveSetting = useApp((st) => st.saveSetting)
  // 'clear' asks only for the confirming secret (credentials that guard an endpoint need it to be cleared too).
  const [editing, setEditing] = useState<false | 'edit' | 'clear'>(false)
  const [value, setValue] = useState('')
  const [secret, setSecret] = useState('')
  const [note, setNote] = useState<{ ok: boolean; message: string } | null>(null)
  const confirmWith = s.guard?.confirmWith ?? null
  const stop = () => {
    setEditing(false)
    setValue('')
    setSecret('')
  }
  const save = async (v: string | null) => {
    const r = await saveSetting(s.key, v, confirmWith && secret ? secret : undefined)
    // Clearing a flagged value: the default is what already runs, no restart needed.
    setNote(r.ok && v === null && s.problem ? { ok: true, message: 'Cleared: the default, which already applies.' } : r)
    if (r.ok) stop()
    else setSecret('')
    // Clearing a credential that guards an endpoint asks for the current secret: ask for it here.
    if (v === null && r.code === 'confirmation_required') setEditing('clear')
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
            className="edit column"
            onSubmit={(e) => {
              e.preventDefault()
              void save(editing === 'clear' ? null : value)
            }}
          >
            {editing === 'edit' && (
              <input
                autoFocus
                type={s.secret ? 'password' : 'text'}
                value={value}
                placeholder={s.secret ? 'new secret (never shown again)' : (s.value ?? '')}
                onChange={(e) => setValue(e.target.value)}
                aria-label={`New value for ${s.key}`}
              />
            )}
            {s.guard && <div className="muted">{s.guard.why}</div>}
            {confirmWith && (
              <label className="confirm">
                To confirm, enter {/^[A-Z_]+$/.test(confirmWith) ? <code>{confirmWith}</code> : confirmWith} as it is configured now
                (checked, never stored or shown):
                <input
                  type="password"
                  autoComplete="off"
                  value={secret}
                  onChange={(e) => setSecret(e.target.value)}
                  aria-label={`Confirm with ${confirmWith}`}
                />
              </label>
            )}
            <div className="toolbar">
              <button
                className={editing === 'clear' ? 'danger' : 'primary'}
                type="submit"
                disabled={(editing === 'edit' && !value) || (!!confirmWith && !secret)}
              >
                {editing === 'clear' ? 'Clear' : 'Save'}
              </button>
              {editing === 'edit' && !confirmWith && (s.source === 'settings file' || s.problem) && (
                <button type="button" onClick={() => void save(null)} title="Remove the saved value: the default applies after a restart">
                  Clear (use the default)
                </button>
              )}
              <button
                type="button"
                onClick={() => {
                  stop()
                  setNote(null)
                }}
              >
                Cancel
              </button>
            </div>
            <div className="muted">Applies after a restart.</div>
          </form>
        ) : (
          (s.value ?? <span className="muted">not set</span>)
        )}
        {!editing && s.guard?.environmentOnly && <div className="muted">Set in the environment only: {s.guard.why}</div>}
        {s.problem && (
          <div className="danger-text" role="alert" data-testid={`setting-${s.key}-problem`}>
            {s.problem}
          </div>
        )}
        {s.pending !== null && <div className="note">Saved: {s.pending} (applies after a restart)</div>}
        {note && (note.ok ? s.pending === null : true) && (
          <div className={note.ok ? 'note' : 'danger-text'} role={note.ok ? undefined : 'alert'} data-testid={`setting-${s.key}-note`}>
            {note.message}
          </div>
        )}
      </td>
      <td>{s.source}</td>
      <td className="actions">
        {!editing && !s.guard?.environmentOnly && (
          <button
            className="link"
            onClick={() => {
              setNote(null)
              setEditing('edit')
            }}
          >
            Edit
          </button>
        )}
        {!editing && (s.source === 'settings file' || s.source === 'secret store' || !!s.problem) && (
          <button className="link" onClick={() => void save(null)}>
            Clear
          </button>
        )}
      </td>
    </tr>
  )
}

/** Saved values apply after a restart: the desktop app restarts itself; a browser tab says how to restart the host. */
function RestartBar() {
  const { settings, info, api } = useApp()
  const [message, setMessage] = useState<string | null>(null)
  // Only saved changes wait for a restart: a flagged bad value already runs at its default.
  const pending = settings?.filter((s) => s.pending !== null) ?? []
  if (!pending.length) return null
  const desktop = info?.face === 'electron'
  return (
    <div className="note" data-testid="restart-bar">
      {pending.length === 1 ? `${pending[0].key} applies` : `${pending.length} saved settings apply`} after a restart.{' '}
      {desktop ? (
        <button
          onClick={() =>
            void api!.call('app.restart', {}).then(
              (r) => setMessage(r.message),
              (e: Error) => setMessage(e.message),
            )
          }
        >
          Restart now
        </button>
      ) : (
        <>
          Restart the host to apply: stop <code>npm run serve</code> (or <code>examforge-ops serve</code>) with Ctrl+C and start it
          again.
        </>
      )}
      {message && <div>{message}</div>}
    </div>
  )
}

export function Settings() {
  const { settings, loadSettings, info, seed, jobs, cancelJob, lastJob } = useApp()
  const [scale, setScale] = useState('1')
  const [scaleError, setScaleError] = useState<string | null>(null)
  const scaleValue = Number(scale)
  const scaleProblem =
    scale.trim() === '' || !Number.isFinite(scaleValue) || scaleValue < 0.01 || scaleValue > 1000
      ? 'The scale is a number from 0.01 to 1000 (1 ≈ 10 MB).'
      : null
  useEffect(() => void loadSettings(), [loadSettings])
  const running = Object.values(jobs)
  return (
    <>
      <section>
        <h2>Configuration</h2>
        <p className="muted">
          Values come from the environment, the secret store or the settings file. Secrets are never shown: only their shape. Change them in
          the environment (or the 0600 file named by OPS_SECRETS_FILE) and restart the console. A setting that says where a secret or the
          backups are sent asks for that secret again before it changes, and remote addresses must use https://.
        </p>
        <p className="muted">
          Every value is read once, when the console starts: a saved change applies after a restart (none applies live).
        </p>
        <RestartBar />
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
          <form
            noValidate
            className="toolbar field-row"
            onSubmit={(e) => {
              e.preventDefault()
              if (scaleProblem) return setScaleError(scaleProblem)
              void seed(scaleValue).then(setScaleError)
            }}
          >
            <label className="field">
              <span>Scale</span>
              <input
                type="number"
                min="0.01"
                max="1000"
                step="any"
                value={scale}
                aria-invalid={!!(scaleError ?? (scale && scaleProblem))}
                aria-describedby="scale-error"
                onChange={(e) => {
                  setScale(e.target.value)
                  setScaleError(null)
                }}
              />
            </label>
            <button type="submit" disabled={running.length > 0}>
              Regenerate sandbox data
            </button>
            {(scaleError ?? (scale && scaleProblem)) && (
              <span id="scale-error" className="danger-text field-error" role="alert" data-testid="scale-error">
                {scaleError ?? scaleProblem}
              </span>
            )}
          </form>
          {running.map((p) => (
            <div key={p.jobId} className="job" data-testid="job-progress">
              <div>
                {p.phase}: {fmtNumber(p.done)}
                {p.total ? ` of ${fmtNumber(p.total)}` : ''} {p.unit} · ETA {fmtDuration(p.etaS)}
                <div className="muted">
                  job <CopyId id={p.jobId} what="job id" />
                </div>
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
