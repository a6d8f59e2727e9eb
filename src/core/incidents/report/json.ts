/**
 * The JSON export: the report itself, validated by its zod schema before it is written, and that schema
 * as a JSON Schema (docs/incident-report.schema.json, generated from the zod schema; a unit test checks
 * the committed file is what the code generates).
 */
import { z } from 'zod'
import { OpsError } from '../../../shared/contract'
import { INCIDENT_REPORT_SCHEMA_VERSION, incidentReport, type IncidentReport } from '../../../shared/incidents'

export function renderJson(r: IncidentReport): string {
  const parsed = incidentReport.safeParse(r)
  if (!parsed.success) {
    const first = parsed.error.issues[0]
    throw new OpsError(
      'invalid_report',
      `The report does not match its schema (version ${INCIDENT_REPORT_SCHEMA_VERSION}) at ${first.path.join('.') || 'the top'}: ${first.message}. Nothing was written.`,
    )
  }
  return `${JSON.stringify(parsed.data, null, 2)}\n`
}

/** The JSON Schema (draft 2020-12) of the JSON export, as committed in docs/incident-report.schema.json. */
export function reportJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(incidentReport, { target: 'draft-2020-12', io: 'output' }) as Record<string, unknown>
  return {
    $schema: schema.$schema,
    title: `ExamForge Ops incident report, schema version ${INCIDENT_REPORT_SCHEMA_VERSION}`,
    description:
      'The JSON export of an incident (or of a time window with no incident declared): docs/incident-report.md describes every field. Times are milliseconds since 1970 (UTC); the timeline is in time order.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  }
}

export function reportJsonSchemaText(): string {
  return `${JSON.stringify(reportJsonSchema(), null, 2)}\n`
}
