import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

/**
 * Every ```ts block in README.md and docs/ is type-checked as its own module against the sources, with the
 * project's strict options. `drkit`, `drkit/testkit` and `drkit/etcd` resolve to src/; the free names the guides
 * use for the reader's own objects (their storage adapters, certificates…) are declared in doc-prelude.d.ts and doc-modules.d.ts.
 */
const root = join(import.meta.dirname, '..', '..')
const preludes = [join(import.meta.dirname, 'doc-prelude.d.ts'), join(import.meta.dirname, 'doc-modules.d.ts')]

interface Block {
  readonly doc: string
  readonly line: number
  readonly file: string
  readonly code: string
}

function markdownFiles(): string[] {
  const docs = readdirSync(join(root, 'docs'), { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.md'))
    .map((entry) => join(root, 'docs', entry.name))
  return [join(root, 'README.md'), ...docs]
}

function blocksOf(path: string): Block[] {
  const lines = readFileSync(path, 'utf8').split('\n')
  const blocks: Block[] = []
  let start = -1
  for (const [index, line] of lines.entries()) {
    if (start < 0 && /^```ts\s*$/.test(line)) start = index
    else if (start >= 0 && /^```\s*$/.test(line)) {
      const doc = relative(root, path)
      const file = join(root, 'docs', '.blocks', `${doc.replace(/[/.]/g, '_')}_${start + 1}.ts`)
      blocks.push({ doc, line: start + 1, file, code: `${lines.slice(start + 1, index).join('\n')}\nexport {}\n` })
      start = -1
    }
  }
  return blocks
}

function typeCheck(blocks: readonly Block[]): Map<string, string[]> {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined })
  if (parsed === undefined) throw new Error('cannot read tsconfig.json')
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    rootDir: root,
    noUnusedLocals: false,
    baseUrl: root,
    paths: { drkit: ['src/index.ts'], 'drkit/testkit': ['src/testkit/index.ts'], 'drkit/etcd': ['src/adapters/etcd/index.ts'] },
  }
  const virtual = new Map(blocks.map((block) => [block.file, block.code]))
  const host = ts.createCompilerHost(options)
  const readFile = host.readFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  host.readFile = (name) => virtual.get(name) ?? readFile(name)
  host.fileExists = (name) => virtual.has(name) || fileExists(name)
  host.getSourceFile = (name, language) => {
    const text = host.readFile(name)
    return text === undefined ? undefined : ts.createSourceFile(name, text, language)
  }
  const program = ts.createProgram({ rootNames: [...preludes, ...virtual.keys()], options, host })
  const problems = new Map<string, string[]>()
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const name = diagnostic.file?.fileName ?? '(global)'
    const where = diagnostic.file !== undefined && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1 : 0
    const list = problems.get(name) ?? []
    list.push(`line ${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`)
    problems.set(name, list)
  }
  return problems
}

const blocks = markdownFiles().flatMap(blocksOf)

describe('code blocks in README.md and docs/', () => {
  it('there are code blocks to check', () => {
    expect(blocks.length).toBeGreaterThan(5)
  })

  it('every ```ts block type-checks against the sources with the strict options', () => {
    const problems = typeCheck(blocks)
    const report = [...problems.entries()].map(([file, list]) => {
      const block = blocks.find((candidate) => candidate.file === file)
      const label = block === undefined ? relative(root, file) : `${block.doc}, block at line ${block.line}`
      return `${label}\n  ${list.join('\n  ')}`
    })
    expect(report).toEqual([])
  }, 120_000)
})
