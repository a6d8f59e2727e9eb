import { useEffect, useMemo, useState } from 'react'
import type { MethodOutput } from '../../../shared/contract'
import { DeclareIncident } from '../components/Declare'
import { MetricChart } from '../components/MetricChart'
import { Time } from '../components/Time'
import { useAlerts } from '../stores/alerts'
import { useApp } from '../stores/app'
import { useMetrics } from '../stores/metrics'

type Backtest = MethodOutput<'alerts.backtest'>

const dur = (ms: number) => {
  const m = Math.round(ms / 60_000)
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`
}

const call = async <T,>(fn: () => Promise<T>, after?: () => void): Promise<T | null> => {
  try {
    const r = await fn()
    after?.()
    return r
  } catch (e) {
    useApp.setState({ error: (e as Error).message })
    return null
  }
}

interface Draft {
  name: string
  series: string
  op: string
  threshold: string
  for: string
  keep_firing_for: string
  severity: string
  summary: string
}

const emptyDraft: Draft = {
  name: '',
  series: 'host.cpu_percent',
  op: '>',
  threshold: '80',
  for: '0s',
  keep_firing_for: '0s',
  severity: 'warning',
  summary: '',
}

const specOf = (d: Draft) => ({
  name: d.name,
  series: d.series,
  op: d.op,
  threshold: Number(d.threshold),
  for: d.for || '0s',
  keep_firing_for: d.keep_firing_for || '0s',
  severity: d.severity,
  ...(d.summary ? { annotations: { summary: d.summary } } : {}),
})

/** The rule editor: the series live with the threshold line, a backtest over stored history, then save. */
function RuleEditor({ initial, onDone }: { initial: Draft; onDone: () => void }) {
  const api = useApp((s) => s.api)!
  const { series, live, init } = useMetrics()
  useEffect(() => void init(), [init])
  const [d, setD] = useState<Draft>(initial)
  const [bt, setBt] = useState<{ days: number; result: Backtest } | null>(null)
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)
  const info = series.find((s) => s.id === d.series)
  const points = live[d.series] ?? []
  const set = (k: keyof Draft) => (e: { target: { value: string } }) => {
    setD({ ...d, [k]: e.target.value })
    setBt(null)
  }
  const backtest = async (days: number) => {
    setBusy(true)
    setProblem(null)
    try {
      setBt({ days, result: await api.call('alerts.backtest', { rule: specOf({ ...d, name: d.name || 'draft' }), days }) })
    } catch (e) {
      setProblem((e as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const save = async () => {
    setProblem(null)
    try {
      await api.call('alerts.saveRule', { rule: specOf(d) })
      onDone()
    } catch (e) {
      setProblem((e as Error).message)
    }
  }
  return (
    <div className="card rule-editor" data-testid="rule-editor">
      <h3>{initial.name ? `Edit ${initial.name}` : 'New threshold rule'}</h3>
      <div className="rule-form">
        <label>
          Name <input value={d.name} onChange={set('name')} placeholder="cpu_high" data-testid="rule-name" />
        </label>
        <label>
          Series
          <select value={d.series} onChange={set('series')} data-testid="rule-series">
            {series.map((s) => (
              <option key={s.id} value={s.id}>
                {s.id} ({s.unit})
              </option>
            ))}
          </select>
        </label>
        <label>
          Condition
          <span className="inline">
            <select value={d.op} onChange={set('op')} data-testid="rule-op">
              {['>', '>=', '<', '<=', '==', '!='].map((o) => (
                <option key={o}>{o}</option>
              ))}
            </select>
            <input value={d.threshold} onChange={set('threshold')} inputMode="decimal" size={8} data-testid="rule-threshold" />
            <span className="muted">{info?.unit}</span>
          </span>
        </label>
        <label title="How long the condition must hold before the alert fires (pending until then)">
          For <input value={d.for} onChange={set('for')} size={6} data-testid="rule-for" />
        </label>
        <label title="How long the alert keeps firing after the condition stops holding (against flapping)">
          Keep firing for <input value={d.keep_firing_for} onChange={set('keep_firing_for')} size={6} />
        </label>
        <label>
          Severity
          <select value={d.severity} onChange={set('severity')}>
            <option>critical</option>
            <option>warning</option>
            <option>info</option>
          </select>
        </label>
        <label className="wide">
          Summary <input value={d.summary} onChange={set('summary')} placeholder="CPU at {{value}} on {{host}}" />
        </label>
      </div>
      <MetricChart
        title={`${d.series} (live)`}
        unit={info?.unit ?? 'count'}
        lines={[{ id: d.series, label: d.series, points }]}
        thresholds={Number.isFinite(Number(d.threshold)) ? [{ value: Number(d.threshold), label: `${d.op} ${d.threshold}` }] : []}
        height={170}
      />
      <div className="actions">
        <button onClick={() => void backtest(7)} disabled={busy} data-testid="backtest-7">
          Backtest 7 days
        </button>
        <button onClick={() => void backtest(30)} disabled={busy}>
          Backtest 30 days
        </button>
        <button className="primary" onClick={() => void save()} disabled={!d.name} data-testid="rule-save">
          Save rule
        </button>
        <button className="link" onClick={onDone}>
          Cancel
        </button>
      </div>
      {problem && (
        <p className="danger-text" role="alert">
          {problem}
        </p>
      )}
      {bt && <BacktestView days={bt.days} result={bt.result} testId="backtest-result" />}
    </div>
  )
}

/** A backtest's outcome per label set: how often the rule would have fired, and the last episodes. */
function BacktestView({ days, result, testId }: { days: number; result: Backtest; testId: string }) {
  return (
    <div className="backtest" data-testid={testId}>
      {result.map((s) => (
        <div key={s.series}>
          <b>
            Over the last {days} days ({s.result.points} stored points{result.length > 1 && s.series ? `, ${s.series}` : ''}), this rule
            would have fired {s.result.episodes.length} time
            {s.result.episodes.length === 1 ? '' : 's'}
            {s.result.episodes.length ? `, ${dur(s.result.firingMs)} in all` : ''}.
          </b>
          <ul>
            {s.result.episodes.slice(-10).map((e) => (
              <li key={e.from}>
                <Time at={e.from} /> for {e.to ? dur(e.to - e.from) : 'until now'} (peak {e.peak ?? '—'})
              </li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  )
}

const draftOf = (spec: Record<string, unknown>): Draft => ({
  name: String(spec.name ?? ''),
  series: String(spec.series ?? 'host.cpu_percent'),
  op: String(spec.op ?? '>'),
  threshold: String(spec.threshold ?? ''),
  for: String(spec.for ?? '0s'),
  keep_firing_for: String(spec.keep_firing_for ?? '0s'),
  severity: String(spec.severity ?? 'warning'),
  summary: String((spec.annotations as Record<string, string> | undefined)?.summary ?? ''),
})

export function Alerts() {
  const { list, rules, history, silences, load, follow } = useAlerts()
  const api = useApp((s) => s.api)!
  const [editing, setEditing] = useState<Draft | null>(null)
  const [exported, setExported] = useState<string | null>(null)
  const [testResult, setTestResult] = useState<string | null>(null)
  const [ruleBt, setRuleBt] = useState<{ name: string; result?: Backtest; problem?: string; busy?: boolean } | null>(null)
  // Any stored rule, of any kind that keeps its history (the editor's backtest covers the draft).
  const backtestRule = async (name: string) => {
    setRuleBt({ name, busy: true })
    try {
      setRuleBt({ name, result: await api.call('alerts.backtest', { rule: name, days: 7 }) })
    } catch (e) {
      setRuleBt({ name, problem: (e as Error).message })
    }
  }
  useEffect(() => {
    follow()
    void load()
    const t = setInterval(() => void load(), 5000)
    return () => clearInterval(t)
  }, [load, follow])
  const ev = list?.evaluator
  const firing = useMemo(() => list?.alerts ?? [], [list])

  const silence = (labels: Record<string, string>) => {
    const reason = window.prompt(`Silence ${labels.alertname} for 2 hours. Why?`)
    if (!reason) return
    void call(
      () =>
        api.call('alerts.silence', {
          matchers: [{ name: 'alertname', value: labels.alertname, op: '=' }],
          endsAt: Date.now() + 2 * 3_600_000,
          reason,
        }),
      load,
    )
  }

  return (
    <>
      {list?.rulesFileProblem && (
        <div className="banner danger" role="alert" data-testid="rules-file-problem">
          {list.rulesFileProblem}
        </div>
      )}
      {ev?.problem && (
        <div className="banner danger" role="alert">
          {ev.problem}
        </div>
      )}
      {typeof Notification !== 'undefined' && !(window as { ops?: unknown }).ops && Notification.permission === 'default' && (
        <p>
          <button onClick={() => void Notification.requestPermission()}>
            Show alerts as desktop notifications while this page is open
          </button>
        </p>
      )}
      <section>
        <h2>Firing and pending</h2>
        <p className="muted" data-testid="evaluator">
          Evaluated at every metrics collection (every {Math.round((ev?.intervalMs ?? 0) / 1000)} s) by{' '}
          {ev?.here ? 'this console' : 'another console, host or agent on the same ops store'}
          {ev?.lastEvaluationAt ? (
            <>
              ; last here <Time at={ev.lastEvaluationAt} seconds /> in {ev.lastEvaluationMs?.toFixed(1)} ms
            </>
          ) : null}
          .
        </p>
        {firing.length === 0 ? (
          <p data-testid="no-alerts">Nothing is firing or pending.</p>
        ) : (
          <table className="settings" data-testid="alerts-now">
            <thead>
              <tr>
                <th>State</th>
                <th>Rule</th>
                <th>Labels</th>
                <th>Value</th>
                <th>Since</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {firing.map((a) => (
                <tr key={a.id} data-testid={`alert-${a.rule}`} data-phase={a.phase}>
                  <td>
                    <span
                      className={`pill small status-${a.phase === 'firing' ? (a.severity === 'critical' ? 'unhealthy' : 'degraded') : 'not_configured'}`}
                    >
                      {a.phase}
                    </span>
                    {a.silencedBy && <span className="badge">silenced</span>}
                    {a.ackedBy && (
                      <span className="badge" title={`by ${a.ackedBy}`}>
                        acknowledged
                      </span>
                    )}
                  </td>
                  <td>
                    <b>{a.rule}</b> <span className="muted">{a.severity}</span>
                  </td>
                  <td className="labels">
                    {Object.entries(a.labels)
                      .filter(([k]) => k !== 'alertname' && k !== 'severity')
                      .map(([k, v]) => `${k}=${v}`)
                      .join(', ')}
                  </td>
                  <td>{a.text ?? a.value ?? '—'}</td>
                  <td>
                    <Time at={a.since} />
                  </td>
                  <td>
                    <div className="row-actions">
                      {!a.silencedBy && <button onClick={() => silence(a.labels)}>Silence</button>}
                      <DeclareIncident
                        from={{ kind: 'alert', id: a.id }}
                        title={`${a.rule}: ${a.text ?? a.value ?? a.phase}`}
                        severity={a.severity === 'critical' || a.severity === 'warning' || a.severity === 'info' ? a.severity : 'warning'}
                        label="Declare an incident"
                        testId={`declare-${a.rule}`}
                      />
                      {a.phase === 'firing' && !a.ackedBy && (
                        <button onClick={() => void call(() => api.call('alerts.ack', { id: a.id }), load)} data-testid={`ack-${a.rule}`}>
                          Acknowledge
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section>
        <h2>
          Rules{' '}
          <button onClick={() => setEditing({ ...emptyDraft })} data-testid="new-rule">
            New rule
          </button>{' '}
          <button onClick={() => void call(() => api.call('alerts.export', {})).then((r) => r && setExported(r.text))}>
            Export as file
          </button>
        </h2>
        {editing && (
          <RuleEditor
            key={editing.name || 'new'}
            initial={editing}
            onDone={() => {
              setEditing(null)
              void load()
            }}
          />
        )}
        {exported && (
          <div className="card">
            <p className="muted">Save this as the file ALERT_RULES_FILE names (YAML; JSON works too).</p>
            <pre className="export" data-testid="rules-export">
              {exported}
            </pre>
            <button className="link" onClick={() => setExported(null)}>
              Close
            </button>
          </div>
        )}
        {ruleBt && (
          <div className="card" data-testid="rule-backtest">
            <p>
              <b>Backtest of {ruleBt.name}</b> {ruleBt.busy && <span className="muted">running…</span>}
            </p>
            {ruleBt.problem && (
              <p className="danger-text" role="alert">
                {ruleBt.problem}
              </p>
            )}
            {ruleBt.result && <BacktestView days={7} result={ruleBt.result} testId="rule-backtest-result" />}
            <button className="link" onClick={() => setRuleBt(null)}>
              Close
            </button>
          </div>
        )}
        <div className="table-scroll">
          <table className="settings" data-testid="rules">
            <thead>
              <tr>
                <th>Rule</th>
                <th>Kind</th>
                <th>Condition</th>
                <th>From</th>
                <th>State</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rules?.rules.map((r) => (
                <tr key={r.name} data-testid={`rule-${r.name}`} className={r.enabled ? '' : 'muted'}>
                  <td>
                    <b>{r.name}</b> <span className="muted">{r.severity}</span>
                  </td>
                  <td>{r.kind}</td>
                  <td>
                    <code>
                      {String(r.spec.series ?? (r.spec.params ? JSON.stringify(r.spec.params) : ''))} {String(r.spec.op)}{' '}
                      {String(r.spec.threshold)}
                      {r.spec.for ? ` for ${String(r.spec.for)}` : ''}
                    </code>
                  </td>
                  <td>{r.origin === 'file' ? 'rules file' : r.origin === 'ui' ? 'edited here' : 'default'}</td>
                  <td>
                    {!r.enabled ? (
                      'off'
                    ) : r.problem ? (
                      <span className="muted">{r.problem}</span>
                    ) : r.firing ? (
                      `${r.firing} firing`
                    ) : r.pending ? (
                      `${r.pending} pending`
                    ) : (
                      'ok'
                    )}
                  </td>
                  <td>
                    <div className="row-actions">
                      <button onClick={() => void backtestRule(r.name)} data-testid={`backtest-rule-${r.name}`}>
                        Backtest 7 days
                      </button>
                      {r.kind === 'threshold' && r.origin !== 'file' && <button onClick={() => setEditing(draftOf(r.spec))}>Edit</button>}
                      {r.origin === 'ui' && (
                        <button
                          onClick={() =>
                            window.confirm(`Delete the rule ${r.name}?`) &&
                            void call(() => api.call('alerts.deleteRule', { name: r.name }), load)
                          }
                        >
                          Delete
                        </button>
                      )}
                      {r.origin === 'default' && r.enabled && (
                        <button onClick={() => void call(() => api.call('alerts.deleteRule', { name: r.name }), load)}>Turn off</button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section>
        <h2>Channels</h2>
        {rules && rules.channels.length === 0 && (
          <p className="muted">
            No channels: set ALERT_WEBHOOK_URL, ALERT_SLACK_WEBHOOK_URL, ALERT_DISCORD_WEBHOOK_URL or SMTP_URL with ALERT_EMAIL_TO.
          </p>
        )}
        <div className="cards">
          {rules?.channels.map((c) => (
            <div className="card" key={c.name} data-testid={`channel-${c.name}`}>
              <h3>
                {c.name} <span className="muted">{c.type}</span>
              </h3>
              <p className="muted">
                Group wait {dur(c.groupWaitMs)}, interval {dur(c.groupIntervalMs)}, repeat {dur(c.repeatIntervalMs)}
              </p>
              <button
                onClick={() =>
                  void call(() => api.call('alerts.test', { channel: c.name })).then(
                    (r) => r && setTestResult(r.ok ? `Test sent to ${c.name}.` : `Test to ${c.name} failed: ${r.error}`),
                  )
                }
              >
                Send a test
              </button>
            </div>
          ))}
        </div>
        {testResult && <p role="status">{testResult}</p>}
        <h3>Delivery log</h3>
        <table className="settings" data-testid="deliveries">
          <thead>
            <tr>
              <th>When</th>
              <th>Channel</th>
              <th>Rules</th>
              <th>Status</th>
              <th>Outcome</th>
            </tr>
          </thead>
          <tbody>
            {history?.deliveries.map((x) => (
              <tr key={x.id}>
                <td>
                  <Time at={x.at} seconds />
                </td>
                <td>{x.channel}</td>
                <td>{x.rules.join(', ')}</td>
                <td>{x.status}</td>
                <td className={x.outcome === 'failed' ? 'danger-text' : ''}>
                  {x.outcome} ({x.attempts} attempt{x.attempts === 1 ? '' : 's'}){x.error ? `: ${x.error}` : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section>
        <h2>Silences</h2>
        {silences?.length ? (
          <ul>
            {silences.map((s) => (
              <li key={s.id}>
                {s.matchers.map((m) => `${m.name}${m.op}${m.value}`).join(', ')} until <Time at={s.endsAt} />, by {s.createdBy}: {s.reason}{' '}
                <button className="link" onClick={() => void call(() => api.call('alerts.expireSilence', { id: s.id }), load)}>
                  End now
                </button>
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted">No active silences.</p>
        )}
      </section>

      <section>
        <h2>History</h2>
        <table className="settings" data-testid="transitions">
          <thead>
            <tr>
              <th>When</th>
              <th>Rule</th>
              <th>Change</th>
              <th>Value</th>
            </tr>
          </thead>
          <tbody>
            {history?.transitions.map((t, i) => (
              <tr key={i}>
                <td>
                  <Time at={t.at} seconds />
                </td>
                <td>{t.rule}</td>
                <td>
                  {t.from} → <b>{t.to}</b>
                </td>
                <td>{t.text ?? t.value ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  )
}
