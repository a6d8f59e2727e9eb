import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

/**
 * The stylesheet is one file many pages add to; a rule left open (a lost "}") silently swallows every
 * rule after it — browsers and the build both accept it. It happened once at a merge: the Alerts and
 * Errors pages lost their styles. Every block must close where it should.
 */
describe('the stylesheet', () => {
  it('closes every block it opens (outside comments), never going below zero', () => {
    const css = readFileSync(join(__dirname, '../../src/renderer/src/styles.css'), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '')
    let depth = 0
    let lowest = 0
    css.split('\n').forEach((line) => {
      for (const ch of line) depth += ch === '{' ? 1 : ch === '}' ? -1 : 0
      lowest = Math.min(lowest, depth)
      // Only @media (and similar at-rules) nest; a plain rule never opens inside another plain rule.
      expect(depth, `nesting too deep after: ${line}`).toBeLessThanOrEqual(2)
    })
    expect(lowest).toBe(0)
    expect(depth).toBe(0)
  })
})
