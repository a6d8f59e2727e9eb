/** A group's last 24 hours as 24 hourly bars (oldest left). */
export function ErrorSpark({ counts }: { counts: number[] }) {
  const max = Math.max(1, ...counts)
  return (
    <svg
      className="err-spark"
      viewBox="0 0 96 20"
      preserveAspectRatio="none"
      role="img"
      aria-label={`${counts.reduce((a, b) => a + b, 0)} events in 24 h`}
    >
      {counts.map((c, i) => (
        <rect key={i} x={i * 4} y={20 - (c / max) * 20} width={3} height={(c / max) * 20} />
      ))}
    </svg>
  )
}
