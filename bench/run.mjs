#!/usr/bin/env node
// npm run bench [suite...]: the project's benchmarks. Each suite writes JSON under bench/results/.
// Suites: startup (npm run serve -> green Health page in Chromium, cold and warm sandbox).
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startup } from './startup.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const suites = { startup }
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const names = wanted.length ? wanted : Object.keys(suites)
mkdirSync(join(root, 'bench', 'results'), { recursive: true })
for (const name of names) {
  if (!suites[name]) {
    console.error(`Unknown suite "${name}": choose from ${Object.keys(suites).join(', ')}.`)
    process.exit(64)
  }
  console.log(`\n== ${name} ==`)
  const result = await suites[name]({ root })
  const file = join(root, 'bench', 'results', `${name}.json`)
  writeFileSync(file, JSON.stringify({ suite: name, at: new Date().toISOString(), machine: machine(), ...result }, null, 2) + '\n')
  console.log(JSON.stringify(result, null, 2))
  console.log(`written to ${file}`)
}

function machine() {
  return { node: process.version, platform: process.platform, arch: process.arch }
}
