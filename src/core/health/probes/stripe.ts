import { describeNetError, degraded, ok, unhealthy, type Probe } from '../probe'
import { withUrlTransport } from '../transport'

/**
 * Stripe: GET /v1/balance with the secret key. Tells apart an invalid key (401), a restricted key
 * without the balance permission (403) and Stripe being unreachable.
 */
export function stripeProbe(o: { secretKey: string | null; apiBase: string; timeoutMs: number }): Probe {
  return withUrlTransport(stripeProbeOf(o), () => o.apiBase)
}

function stripeProbeOf(o: Parameters<typeof stripeProbe>[0]): Probe {
  return {
    id: 'stripe',
    label: 'Stripe',
    howToConfigure: 'Set STRIPE_SECRET_KEY (a secret or restricted key with "Balance: read").',
    howToEncrypt: 'use an https:// STRIPE_API_BASE (the default is https://api.stripe.com).',
    configured: () => !!o.secretKey,
    async run(signal) {
      const mode = o.secretKey!.includes('_live_') ? 'live' : o.secretKey!.includes('_test_') ? 'test' : 'unknown'
      const t0 = performance.now()
      let res: Response
      try {
        res = await fetch(`${o.apiBase}/v1/balance`, {
          headers: { Authorization: `Bearer ${o.secretKey}`, 'Stripe-Version': '2024-06-20' },
          signal,
        })
      } catch (e) {
        if (signal.aborted) throw e
        return unhealthy(`Stripe is unreachable: ${describeNetError((e as { cause?: unknown }).cause ?? e, 'The Stripe API')}`, {
          apiBase: o.apiBase,
          mode,
        })
      }
      const ms = performance.now() - t0
      let body: { error?: { message?: string; type?: string }; available?: { currency: string; amount: number }[]; livemode?: boolean } = {}
      try {
        body = (await res.json()) as typeof body
      } catch {
        /* non-JSON answers are judged by status below */
      }
      const details = { apiBase: o.apiBase, mode, httpStatus: res.status }
      if (res.status === 200) {
        const currencies = (body.available ?? []).map((a) => a.currency).join(', ') || 'none'
        return ok(`Balance readable (${mode} mode; currencies: ${currencies}).`, { ...details, currencies }, ms)
      }
      if (res.status === 401)
        return unhealthy('Stripe rejected the key as invalid: check STRIPE_SECRET_KEY (it may have been rolled).', details, ms)
      if (res.status === 403)
        return degraded(
          'The key is valid but restricted without "Balance: read": grant that permission to the restricted key.',
          details,
          ms,
        )
      if (res.status === 429) return degraded('Stripe is rate-limiting this key: requests are being throttled.', details, ms)
      if (res.status >= 500)
        return unhealthy(`Stripe answered ${res.status}: Stripe itself is having trouble (see status.stripe.com).`, details, ms)
      return unhealthy(`Stripe answered ${res.status}: ${body.error?.message ?? 'unexpected response'}.`, details, ms)
    },
  }
}
