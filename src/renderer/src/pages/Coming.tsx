import type { Page } from '../stores/app'

const plans: Partial<Record<Page, string>> = {
  metrics: 'Live and historical charts (host, PostgreSQL, Redis, web app) with a tiered history that stays fast over weeks.',
  restore: 'A guided wizard: whole database, chosen tables or any point in time, with preview, safety backup, checks and undo.',
  errors: 'Grouped application errors with their breadcrumbs, from the ExamForge SDK.',
  incidents: 'Incident reports that bring together health, metrics, errors and actions, exportable.',
}

export function Coming({ page }: { page: Page }) {
  return (
    <div className="card coming-card" data-testid="coming">
      <h2>
        Not built yet <span className="badge">coming</span>
      </h2>
      <p>{plans[page]}</p>
      <p className="muted">This page will fill in a coming release; nothing here is simulated.</p>
    </div>
  )
}
