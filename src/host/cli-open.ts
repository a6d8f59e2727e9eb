/**
 * `examforge-ops open`: ask the running host for a fresh one-time launch link. The host's control
 * file (<data folder>/host.json, 0600) gives its address and a local secret, so only the OS user
 * running the host (or root) gets a link, and the session it opens acts as that user. With
 * --as-token the link is minted by an administrator's token (OPS_API_TOKENS) instead, read from
 * OPS_TOKEN or standard input (never from the command line), and the session acts as its e-mail.
 * Nothing is sent to the address of a control file whose host has died, and a link that does not
 * point at the host asked is never printed (whatever answers on a freed port is not the console).
 */
import { defaultDataDir } from '../core/config/config'
import { OpsError } from '../shared/contract'
import { LAUNCH_PATH } from '../shared/ws-protocol'
import { defineCommand } from './cli-command'
import { readControlFile } from './control'

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Administrator token: ')
  let data = ''
  for await (const chunk of process.stdin) {
    data += String(chunk)
    if (data.includes('\n')) break
  }
  return data.split(/\r?\n/)[0].trim()
}

async function openCommand(values: { 'as-token'?: boolean; json?: boolean }): Promise<number> {
  const dataDir = defaultDataDir()
  let origin: string
  let bearer: string
  if (values['as-token']) {
    // The control file may belong to another OS user: then the host is on OPS_PORT (default 7480).
    try {
      origin = readControlFile(dataDir).origin
    } catch (e) {
      if (e instanceof OpsError && e.code === 'stale_host') throw e
      origin = `http://127.0.0.1:${process.env.OPS_PORT ?? 7480}`
    }
    bearer = process.env.OPS_TOKEN?.trim() || (await readStdin())
    if (!bearer) throw new OpsError('bad_argument', "--as-token needs an administrator's token in OPS_TOKEN or on standard input.")
  } else {
    const c = readControlFile(dataDir)
    origin = c.origin
    bearer = c.secret
  }
  let res: Response
  try {
    res = await fetch(`${origin}${LAUNCH_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${bearer}` } })
  } catch {
    throw new OpsError('no_host', `No console host answers at ${origin}: start one with "examforge-ops serve".`)
  }
  const body = (await res.json().catch(() => null)) as { ok: boolean; value?: { url: string }; error?: { message: string } } | null
  if (!body?.ok || !body.value) throw new OpsError('refused', `The host refused: ${body?.error?.message ?? `HTTP ${res.status}`}`)
  if (typeof body.value.url !== 'string' || !body.value.url.startsWith(`${origin}/?token=`))
    throw new OpsError(
      'not_the_host',
      `What answers at ${origin} is not the console host (its link points elsewhere), so no link is printed. Start the host with "examforge-ops serve".`,
    )
  process.stdout.write(
    values.json
      ? JSON.stringify(body.value) + '\n'
      : `Open this one-time link in a browser (it lasts 5 minutes):\n\n  ${body.value.url}\n\n`,
  )
  return 0
}

export const open = defineCommand({
  name: 'open',
  synopsis: '[--as-token] [--json]',
  description: `Print a fresh one-time link into the running host's browser UI (it lasts 5 minutes), for
    the OS user running the host; --as-token signs the link in as an administrator's token
    (OPS_API_TOKENS), read from OPS_TOKEN or standard input. Exit 1 when no host is running.`,
  options: { 'as-token': { type: 'boolean' }, json: { type: 'boolean' } },
  run: ({ values }) => openCommand(values),
})
