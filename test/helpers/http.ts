import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A real HTTP server on loopback for the probes that speak HTTP (the web app, Stripe's API shape). */
export async function startHttp(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/**
 * Stripe's balance endpoint as Stripe answers it (status codes and error bodies from its API
 * reference), keyed by the presented key. The real API cannot be reached from the test machine.
 */
export function stripeLike(req: IncomingMessage, res: ServerResponse) {
  const key = (req.headers.authorization ?? '').replace(/^Bearer /, '')
  res.setHeader('Content-Type', 'application/json')
  if (req.url !== '/v1/balance') {
    res.writeHead(404).end(JSON.stringify({ error: { type: 'invalid_request_error', message: 'Unrecognized request URL' } }))
  } else if (key === 'sk_test_good0000000000') {
    res
      .writeHead(200)
      .end(JSON.stringify({ object: 'balance', livemode: false, available: [{ amount: 1200, currency: 'usd' }], pending: [] }))
  } else if (key.startsWith('rk_test_')) {
    res.writeHead(403).end(
      JSON.stringify({
        error: { type: 'invalid_request_error', message: 'The provided key does not have the required permissions for this endpoint.' },
      }),
    )
  } else {
    res
      .writeHead(401)
      .end(JSON.stringify({ error: { type: 'invalid_request_error', message: `Invalid API Key provided: ${key.slice(0, 8)}***` } }))
  }
}
