import { describe, expect, it } from 'vitest'
import { checkEndpointChange, isLoopbackHost } from '../../src/core/settings/endpoints'

describe('what moving an endpoint that receives a secret requires', () => {
  it('only this machine counts as loopback, however the address is spelled', () => {
    for (const h of ['localhost', '127.0.0.1', '127.3.2.1', '[::1]', new URL('http://0x7f.1/').hostname])
      expect(isLoopbackHost(h)).toBe(true)
    for (const h of ['127.0.0.1.nip.io', 'evil.localhost', 'localhost.evil.example', '10.0.0.1', '[::ffff:7f00:1]', '0.0.0.0'])
      expect(isLoopbackHost(h)).toBe(false)
  })

  it('the environment-only and confirmation rules follow what is configured', () => {
    const raw = { STRIPE_SECRET_KEY: 'sk_test_configured_0001', DATABASE_URL: 'postgres://app@db.internal/examforge' }
    expect(() => checkEndpointChange('STRIPE_API_BASE', 'https://proxy.example', undefined, raw)).toThrow(/enter STRIPE_SECRET_KEY again/)
    expect(() => checkEndpointChange('STRIPE_API_BASE', 'https://proxy.example', 'sk_test_configured_0001', raw)).not.toThrow()
    // No Stripe key yet: nothing to send, so no confirmation, but still https for a remote host.
    expect(() => checkEndpointChange('STRIPE_API_BASE', 'https://proxy.example', undefined, {})).not.toThrow()
    expect(() => checkEndpointChange('STRIPE_API_BASE', 'http://proxy.example', undefined, {})).toThrow(/must use https:\/\//)
    expect(() => checkEndpointChange('STRIPE_API_BASE', 'ftp://proxy.example', undefined, {})).toThrow(/must be an https:\/\/ address/)
    // S3 with the machine's own credentials (nothing to confirm with): environment only.
    expect(() => checkEndpointChange('BACKUP_S3_BUCKET', 'other-bucket', undefined, {})).toThrow(/cannot be changed from the console/)
    // A database URL without a password: another server only through the environment; the same server is fine.
    expect(() => checkEndpointChange('DATABASE_URL', 'postgres://app@elsewhere.example/examforge', 'x', raw)).toThrow(
      /cannot be moved to another server/,
    )
    expect(() => checkEndpointChange('DATABASE_URL', 'postgres://app:newpass@db.internal/examforge', undefined, raw)).not.toThrow()
    // Clearing back to the default sends nothing anywhere new.
    expect(() => checkEndpointChange('S3_ENDPOINT', null, undefined, { AWS_SECRET_ACCESS_KEY: 'k'.repeat(40) })).not.toThrow()
  })
})
