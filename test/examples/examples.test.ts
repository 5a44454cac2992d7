import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const examplesDir = join(import.meta.dirname, '..', '..', 'examples')
const examples = readdirSync(examplesDir).filter((file) => file.endsWith('.ts'))
/** Examples with a test file of their own, which runs them and checks their report (not run a second time here). */
const ownTests: Readonly<Record<string, string>> = { 'dr-drill.ts': 'dr-drill.test.ts' }

describe('examples', () => {
  it('there is at least one example', () => {
    expect(examples.length).toBeGreaterThan(0)
  })

  for (const [example, test] of Object.entries(ownTests)) {
    it(`${example} is run by ${test}`, () => {
      expect(examples).toContain(example)
      expect(readFileSync(join(import.meta.dirname, test), 'utf8')).toContain(`'examples', '${example}'`)
    })
  }

  for (const example of examples.filter((file) => ownTests[file] === undefined)) {
    it(`${example} runs to completion and reports that every verification passed`, async () => {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', join(examplesDir, example)], { timeout: 120_000 })
      expect(stdout).toMatch(/every verification passed/)
    }, 150_000)
  }
})
