/**
 * A group's last 24 hours as 24 hourly bars (oldest left), drawn as one path: the Errors list shows up to 200 of
 * these, and one element each (rather than 24 rects) keeps the list quick to lay out.
 */
export function ErrorSpark({ counts }: { counts: number[] }) {
  const max = Math.max(1, ...counts)
  let d = ''
  counts.forEach((c, i) => {
    const h = Math.round((c / max) * 200) / 10
    if (h > 0) d += `M${i * 4} 20h3v-${h}h-3z`
  })
  return (
    <svg
      className="err-spark"
      viewBox="0 0 96 20"
      preserveAspectRatio="none"
      role="img"
      aria-label={`${counts.reduce((a, b) => a + b, 0)} events in 24 h`}
      data-bars={counts.map((c) => (c > 0 ? 1 : 0)).join('')}
    >
      <path d={d} />
    </svg>
  )
}
