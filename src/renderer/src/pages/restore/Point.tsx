import { useState } from 'react'
import type { RestorePoints } from '../../../../shared/restore'
import { useRestore } from '../../stores/restore'
import { formatTime, localizeTimes } from '../../../../shared/format'

type Chain = RestorePoints['chains'][number]

const fmt = (iso: string) => formatTime(iso)
/** A local datetime-local value (seconds) for an ISO time, and back. */
const toLocalInput = (iso: string) => {
  const d = new Date(iso)
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** The zone the operator's times are in, as the browser names it (e.g. "CET", "GMT+1"). */
const zoneName = () =>
  new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(new Date()).find((p) => p.type === 'timeZoneName')?.value ??
  ''

/** Ticks under a chain's bar: evenly spaced local times, dates shown when the span crosses a day. */
function TimeAxis({ from, to }: { from: number; to: number }) {
  // One set on its own: its moment under the marker.
  const n = to > from ? 4 : 0
  const multiDay = new Date(from).toDateString() !== new Date(to).toDateString()
  const withSeconds = to - from < 5 * 60_000
  const label = (t: number) =>
    new Date(t).toLocaleString(undefined, {
      ...(multiDay ? { month: 'short', day: 'numeric' } : {}),
      hour: '2-digit',
      minute: '2-digit',
      ...(withSeconds ? { second: '2-digit' } : {}),
    })
  return (
    <div className="chain-axis" data-testid="chain-axis" aria-hidden>
      {Array.from({ length: n + 1 }, (_, i) => {
        const t = n ? from + ((to - from) * i) / n : from
        return (
          <span key={i} className={`tick${n ? '' : ' single'}`} style={{ left: n ? `${(i / n) * 100}%` : '50%' }}>
            {label(t)}
          </span>
        )
      })}
    </div>
  )
}

/** One chain on a line: from its full backup to its newest incremental; click a set, or anywhere on the line for that moment. */
function ChainTimeline({ chain }: { chain: Chain }) {
  const { point, choosePoint } = useRestore()
  const from = new Date(chain.from).getTime()
  const to = new Date(chain.to).getTime()
  const span = Math.max(1, to - from)
  const pos = (iso: string) => (to === from ? 50 : ((new Date(iso).getTime() - from) / span) * 100)
  const chosenTime = point && 'time' in point ? new Date(point.time).getTime() : null
  const chosenHere = chosenTime !== null && chosenTime >= from && chosenTime <= to
  return (
    <div className="chain" data-testid="restore-chain">
      <div className="chain-head">
        <b>Chain of {chain.fullSetId}</b>
        <span className="muted">
          {' '}
          · {fmt(chain.from)} → {fmt(chain.to)} · {chain.sets.length} set(s)
        </span>
      </div>
      {chain.note && (
        <p className="muted" data-testid="chain-note">
          {chain.note}
        </p>
      )}
      <div
        className="chain-bar"
        title="Click to restore to that moment"
        onClick={(e) => {
          if (to === from) return
          const r = e.currentTarget.getBoundingClientRect()
          const t = from + ((e.clientX - r.left) / r.width) * span
          void choosePoint({ time: new Date(Math.round(t / 1000) * 1000).toISOString() })
        }}
      >
        {chain.sets.map((s) => {
          const chosen = point && 'setId' in point && point.setId === s.setId
          return (
            <button
              key={s.setId}
              className={`marker ${s.type}${chosen ? ' marker-chosen' : ''}`}
              data-chosen={chosen ? 'true' : undefined}
              style={{ left: `${pos(s.snapshotTime)}%` }}
              title={`${s.type} ${s.setId}\n${fmt(s.snapshotTime)}`}
              aria-label={`Restore ${s.type} ${s.setId}`}
              onClick={(e) => {
                e.stopPropagation()
                void choosePoint({ setId: s.setId })
              }}
              data-testid="restore-marker"
            />
          )
        })}
        {chosenHere && <div className="time-cursor" style={{ left: `${pos(new Date(chosenTime!).toISOString())}%` }} />}
      </div>
      <TimeAxis from={from} to={to} />
    </div>
  )
}

export function PointStep({ points }: { points: RestorePoints }) {
  const { point, choosePoint, setStep, plan, planning, planError, setAllowUnauthenticated } = useRestore()
  const [time, setTime] = useState('')
  const ranges = points.chains
  if (!ranges.length && !points.safety.length)
    return (
      <section className="card">
        <h3>Nothing to restore yet</h3>
        <p>
          There is no complete backup. Take a full backup on the Backups page first; a restore can then reach it, and with incrementals any
          moment after it.
        </p>
      </section>
    )
  return (
    <section className="card" data-testid="restore-point">
      <h3>1. Choose the point to restore</h3>
      <p className="muted">
        A backup set (a marker), or any moment a chain covers: click its line, or type a time. Times are your local time ({zoneName()}).
      </p>
      {ranges.map((c) => (
        <ChainTimeline key={c.fullSetId} chain={c} />
      ))}
      <form
        className="edit"
        onSubmit={(e) => {
          e.preventDefault()
          if (time) void choosePoint({ time: new Date(time).toISOString() })
        }}
      >
        <label>
          Moment{' '}
          <input
            type="datetime-local"
            step={1}
            value={time}
            onChange={(e) => setTime(e.target.value)}
            aria-label="Point in time"
            data-testid="restore-time"
          />
        </label>
        <button type="submit" disabled={!time}>
          Use this moment
        </button>
        {ranges[0] && (
          <button type="button" className="link" onClick={() => setTime(toLocalInput(ranges[0].to))}>
            latest covered moment
          </button>
        )}
      </form>
      {points.safety.length > 0 && (
        <details className="safety-list">
          <summary>Safety backups taken before earlier restores ({points.safety.length})</summary>
          <ul>
            {points.safety.map((s) => (
              <li key={s.setId}>
                <button className="link" onClick={() => void choosePoint({ setId: s.setId })}>
                  {s.setId}
                </button>{' '}
                <span className="muted">
                  {fmt(s.snapshotTime)} · {s.tables} table(s)
                </span>
              </li>
            ))}
          </ul>
        </details>
      )}
      <div className="chosen" data-testid="restore-chosen">
        {point ? (
          planning ? (
            'Reading the backup…'
          ) : plan ? (
            <>
              Chosen: <b title={plan.point.time ?? plan.point.label}>{localizeTimes(plan.point.label)}</b> · reads {plan.sets.length} set(s)
              {plan.transactions ? `, replays ${plan.transactions} transaction(s)` : ''}
            </>
          ) : (
            <>
              <span className="danger-text">{planError}</span>
              {planError?.includes('--allow-unauthenticated') && (
                <label className="acknowledge">
                  <input
                    type="checkbox"
                    onChange={(e) => void setAllowUnauthenticated(e.target.checked)}
                    data-testid="restore-allow-unauthenticated"
                  />{' '}
                  I trust the backup storage: restore it although its manifest is not authenticated
                </label>
              )}
            </>
          )
        ) : (
          <span className="muted">Nothing chosen yet.</span>
        )}
      </div>
      <div className="wizard-nav">
        <button className="primary" disabled={!plan || planning} onClick={() => setStep('scope')} data-testid="restore-next">
          Next: scope
        </button>
      </div>
    </section>
  )
}
