/**
 * What both PDF printers (Playwright + Chromium in the host and CLI, Electron's printToPDF in the app)
 * print with: the page margins (the CSS @page margins of html.ts) and the footer with "page X of Y".
 */
import { esc } from './html-escape'

export const PDF_MARGINS = { top: '16mm', bottom: '18mm', left: '14mm', right: '14mm' } as const

/** Chromium fills .pageNumber and .totalPages; the template's own styles apply (the page's do not). */
export function pdfFooterTemplate(title: string): string {
  const t = title.length > 90 ? `${title.slice(0, 89)}…` : title
  return (
    `<div style="width:100%;font-size:8px;font-family:'DejaVu Sans',Arial,sans-serif;color:#4a5563;padding:0 14mm;display:flex;justify-content:space-between;">` +
    `<span style="overflow:hidden;white-space:nowrap;text-overflow:ellipsis;max-width:70%;">${esc(t)}</span>` +
    `<span>page <span class="pageNumber"></span> of <span class="totalPages"></span></span></div>`
  )
}

/** An empty header (Chromium's default one would print the date and the page's title). */
export const PDF_HEADER_TEMPLATE = '<div></div>'

/** The error a print that took too long ends with (both printers). */
export function pdfTimeoutMessage(timeoutMs: number): string {
  const t = timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`
  return `Printing the PDF took longer than ${t} and was stopped. Try again, or export HTML and print it from a browser.`
}
