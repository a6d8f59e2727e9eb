import { formatTime } from '../../../shared/format'

/** A moment as the operator reads it (local time, zone named), with ISO UTC on hover. */
export function Time({ at, seconds }: { at: string | number | null | undefined; seconds?: boolean }) {
  if (at === null || at === undefined) return <>—</>
  const d = new Date(at)
  if (Number.isNaN(d.getTime())) return <>—</>
  return (
    <time dateTime={d.toISOString()} title={d.toISOString()}>
      {formatTime(d, { seconds })}
    </time>
  )
}
