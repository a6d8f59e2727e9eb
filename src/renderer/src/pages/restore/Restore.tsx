import { useEffect } from 'react'
import { steps, useRestore } from '../../stores/restore'
import { PointStep } from './Point'
import { History, ResultStep } from './Report'
import { ConfirmStep, PreviewStep, RunningStep, ScopeStep, TargetStep } from './Steps'

/** The restore wizard: point, scope, target, preview, confirm, progress, check report and Undo; then tests and history. */
export function Restore() {
  const { points, history, step, plan, running, load } = useRestore()
  useEffect(() => void load(), [load])
  const at = steps.findIndex((s) => s.step === step)
  return (
    <>
      <ol className="steps" data-testid="restore-steps">
        {steps.map((s, i) => (
          <li key={s.step} className={i === at ? 'current' : i < at ? 'done' : ''}>
            {s.label}
          </li>
        ))}
      </ol>
      {!points ? (
        <p className="muted">Reading the backup catalog…</p>
      ) : step === 'point' ? (
        <PointStep points={points} />
      ) : step === 'scope' && plan ? (
        <ScopeStep plan={plan} />
      ) : step === 'target' ? (
        <TargetStep database={points.database} />
      ) : step === 'preview' ? (
        <PreviewStep />
      ) : step === 'confirm' && plan ? (
        <ConfirmStep plan={plan} />
      ) : step === 'running' ? (
        <RunningStep />
      ) : step === 'result' ? (
        <ResultStep />
      ) : (
        <PointStep points={points} />
      )}
      {running?.kind === 'test' && <RunningStep />}
      <History history={history} />
    </>
  )
}
