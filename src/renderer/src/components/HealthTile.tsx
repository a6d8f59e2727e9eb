import type { HealthResult } from '../../../shared/domain'
import { ago, statusText, transportText } from './format'

export function HealthTile({
  r,
  compact,
  onOpen,
  selected,
}: {
  r: HealthResult
  compact?: boolean
  onOpen?: () => void
  selected?: boolean
}) {
  const checked = r.checkedAt.startsWith('1970') ? null : r.checkedAt
  return (
    <button
      type="button"
      className={`tile status-${r.status}${selected ? ' selected' : ''}${compact ? ' compact' : ''}`}
      data-testid={`tile-${r.service}`}
      data-status={r.status}
      onClick={onOpen}
      aria-label={`${r.label}: ${statusText[r.status]}`}
    >
      <div className="tile-head">
        <span className="dot" aria-hidden />
        <span className="tile-label">{r.label}</span>
        <span className="tile-status">{statusText[r.status]}</span>
      </div>
      <div className="tile-reason" title={r.reason}>
        {r.reason}
      </div>
      {!compact && (
        <div className="tile-meta">
          <span>{r.latencyMs == null ? '—' : `${Math.round(r.latencyMs)} ms`}</span>
          <span>checked {ago(checked)}</span>
          <span>since {ago(r.lastChangeAt)}</span>
          {r.transport && (
            <span
              className={`transport${!r.transport.encrypted && !r.transport.loopback ? ' warn' : ''}`}
              data-testid={`transport-${r.service}`}
              title={r.transport.detail}
            >
              {transportText(r.transport)}
            </span>
          )}
        </div>
      )}
    </button>
  )
}
