/**
 * The incident report in one of four formats (PDF, HTML, Markdown, JSON), rendered from one IncidentReport.
 * Placeholder interface from the lead: the report engineer replaces this file with the renderers.
 */
import { OpsError } from '../../../shared/contract'
import type { ExportFormat, IncidentReport } from '../../../shared/incidents'

/** Prints self-contained HTML to PDF: Playwright + a system Chromium in the host and CLI, Electron's printToPDF in the app. */
export type PdfPrinter = (html: string, opts: { paper: 'A4' | 'Letter'; title: string }) => Promise<Buffer>

export interface RenderedReport {
  fileName: string
  mimeType: string
  encoding: 'utf8' | 'base64'
  /** utf8 text, or the PDF's bytes. */
  data: string | Buffer
}

export async function renderReport(
  report: IncidentReport,
  format: ExportFormat,
  opts: { paper: 'A4' | 'Letter'; printPdf?: PdfPrinter },
): Promise<RenderedReport> {
  void report
  void opts
  throw new OpsError('not_built', `Exporting as ${format} is being built.`)
}
